"""``zoo list``, ``zoo info``, ``zoo plugins``: read the catalogs (``list`` never imports torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.catalogs import plugins
from zoo.cli.network import network_option
from zoo.cli.output import print_json, print_table, warn
from zoo.cli.types import NonEmptyPath, Text
from zoo.errors import ZooError
from zoo.listing import list_entries
from zoo.picture import picture_problem
from zoo.registry import PYTHON_SOURCE
from zoo.resolver import kind_of, resolve_card
from zoo.weights.report import availability, weights_used

__all__ = ["list_command", "info_command", "plugins_command"]


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--source", type=Text("a catalog name"),
              help="Only entries from this catalog (builtin, timm, or a plugin's name).")
@click.option("--tag", type=Text("a tag"), help="Only entries with this tag.")
@click.option("--models", "kind", flag_value="model", help="Only models.")
@click.option("--datasets", "kind", flag_value="dataset", help="Only dataset adapters.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(pattern: str | None, source: str | None, tag: str | None, kind: str | None, as_json: bool) -> None:
    """List models, model families and dataset adapters, optionally matching PATTERN.

    PATTERN uses shell wildcards: 'res*', '*net*', 'timm/resnet*' (quote it). A family
    such as timm is listed member by member when PATTERN starts with its prefix.
    """
    kinds = ("model", "family", "dataset") if kind is None else ((kind, "family") if kind == "model" else (kind,))
    rows = list_entries(pattern, source=source, tag=tag, kinds=kinds)
    if as_json:
        print_json([{"name": r.name, "kind": r.kind, "source": r.source, "summary": r.summary, "tags": list(r.tags)} for r in rows])
        return
    if not rows:
        click.echo(f"nothing matches '{pattern}'" if pattern else "no entries", err=True)
        return
    print_table(None, ["NAME", "KIND", "SOURCE", "SUMMARY"], ((r.name, r.kind, r.source, r.summary) for r in rows))
    broken = [p for p in plugins() if p.error]
    if broken:
        click.echo(f"{len(broken)} plugin(s) could not be read and were skipped: see 'zoo plugins'", err=True)


def _diagram_suffix(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--plot: a .png or .svg, refused while the command line is read (before any model is built)."""
    problem = None if value is None else picture_problem(value)
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return value


@click.command("info")
@click.argument("name", type=Text("a model name or file"))
@click.option("--layers/--no-layers", default=True, help="Build the model and show its layer table.")
@click.option("--plot", type=NonEmptyPath(dir_okay=False, path_type=Path), callback=_diagram_suffix,
              metavar="FILE", help="Also write the network as a layer diagram (MATLAB's plot(lgraph)): FILE.png or "
                                   "FILE.svg. Works with --no-layers.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@network_option
def info_command(name: str, layers: bool, plot: Path | None, as_json: bool, network: str | None) -> None:
    """Describe NAME (a registry name, checkpoint, ONNX file, layer array lab6.m or
    Python network net.py:NAME): its card and layers.

    The layer table is MATLAB's net.Layers: index, name, type, output shape and
    parameters, with totals for parameters and FLOPs for one input. The names are
    what 'zoo features --layer' takes.

    --plot FILE draws the network, MATLAB's plot(lgraph): one box per layer (name, type,
    output shape), top-down, with branches and skip connections beside the main chain.
    An ONNX file is drawn from its own graph, without torch.

    \b
    zoo info resnet18 --plot resnet18.png
    zoo info digitnet.onnx --no-layers --plot digitnet.svg
    """
    card = resolve_card(name)
    in_file = kind_of(name) in ("checkpoint", "onnx")  # a file that holds weights
    table = built = None
    needs_network = card.source == PYTHON_SOURCE and kind_of(name) == "checkpoint" and network is None
    if needs_network and plot:
        raise ZooError(f"cannot draw '{name}': it holds a network defined in Python; give it again with "
                       f"--network FILE.py:NAME")
    if needs_network and layers:
        warn(f"no layer table: '{name}' holds a network defined in Python; give it again with --network FILE.py:NAME")
    if (layers or plot) and kind_of(name) != "onnx" and not needs_network:
        # torch: only for the table or the diagram ('zoo list' and 'zoo info --no-layers' never import it)
        from zoo.resolver import resolve

        built = resolve(name, network=network)
        card = built.card
    if layers and built is not None:
        from zoo.summary import layer_table  # torch, as above

        table = layer_table(built.module, card)
    if as_json:
        out = {"card": {"name": card.name, "source": card.source, **card.to_table()}}
        if in_file:  # the weights the file holds started from these
            out["weights_used"] = weights_used(card)
        else:  # the tags a name can load, and whether each is here
            out["weights_available"] = [a.to_dict() for a in availability(card)]
        if table is not None:
            out["layers"] = [row._asdict() for row in table.rows]
            out["parameters"] = table.parameters
            out["flops"] = table.flops
        print_json(out)
    else:
        _print_card(card, in_file=in_file)
        if table is not None:
            click.echo()
            print_table(
                "Layers",
                ["#", "NAME", "TYPE", "OUTPUT", "PARAMS"],
                ((r.index, r.name, r.type, "x".join(map(str, r.output_shape)), f"{r.params:,}") for r in table.rows),
                justify=("right", "left", "left", "left", "right"),
            )
            click.echo(f"\nparameters: {table.parameters:,}   FLOPs (one input): {_si(table.flops)}")
    if plot is not None:
        _write_diagram(name if built is None else built, plot, network, quiet=as_json)


def _write_diagram(model: Any, path: Path, network: str | None, *, quiet: bool) -> None:
    """Draw ``model`` (a Built, or an ONNX file's name) to ``path``; one line says where (stderr with --json)."""
    # torch (for a torch network) and matplotlib: only with --plot
    from zoo.diagram import network_graph, write_diagram

    graph = network_graph(model, network=network, warn=warn)
    write_diagram(graph, path, warn=warn)
    click.echo(f"wrote the diagram of {len(graph.layers)} layers to {path}", err=quiet)


def _print_card(card, *, in_file: bool) -> None:
    rows = [
        ("name", card.name),
        ("source", f"{card.source} ({card.distribution})" if card.distribution else card.source),
        ("summary", card.summary),
        ("task", card.task),
        *((("factory", card.factory),) if card.factory else ()),  # files carry none: the catalog builds
        ("input", f"{card.channels}x{card.input_size[0]}x{card.input_size[1]} ({_resize(card)}, {card.interpolation})"),
        ("mean / std", _statistics(card)),
        ("classes", f"{card.num_classes}" + (f": {', '.join(card.labels[:10])}{' ...' if len(card.labels) > 10 else ''}" if card.labels else "")),
        *_weights_rows(card, in_file),
        ("license", card.license or "-"),
        ("tags", ", ".join(card.tags) or "-"),
    ]
    for key in ("metrics", "options"):
        if key in card.training:
            rows.append((key, ", ".join(f"{k}={v}" for k, v in card.training[key].items())))
    print_table(None, ["", ""], rows)
    if card.layers:  # a layer array: MATLAB's net.Layers, input and output layers included
        from zoo.layers import describe

        click.echo()
        click.echo(f"Layer array ({card.extra.get('defined_in', 'stored in the card')})")
        for line in describe(list(card.layers)):
            click.echo(f"  {line}")


def _statistics(card) -> str:
    """mean / std; a layer array's imageInputLayer normalization by name, on 0..255 pixels."""
    numbers = f"{[round(m, 4) for m in card.mean]} / {[round(s, 4) for s in card.std]}"
    normalization = card.extra.get("normalization")
    if normalization is None:
        return numbers
    if not card.extra.get("normalization_fitted", True):
        return f"{normalization} (from the training images, when training starts)"
    return f"{numbers} ({normalization}, on 0..1 pixels)"


def _resize(card) -> str:
    if card.resize_mode != "center-crop":
        return card.resize_mode
    return f"center-crop {card.crop_pct:g}" + (f", {card.crop_mode}" if card.crop_mode != "center" else "")


def _weights_rows(card, in_file: bool) -> list[tuple[str, str]]:
    """A file: what its weights started from. A name: each tag, and whether it is here."""
    if in_file:
        used = weights_used(card)
        return [("weights", f"in this file; {used['text']}"), *((("", used["replaced"]),) if used["replaced"] else ())]
    if not card.weights:
        return [("weights", "no pretrained weights declared (train from scratch)")]
    return [("weights" if i == 0 else "", a.text()) for i, a in enumerate(availability(card))]


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


@click.command("plugins")
@click.option("--check", is_flag=True, help="Also import every factory and build every plugin model.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(check: bool, as_json: bool) -> None:
    """List catalogs found through the 'zoo.plugins' entry points, with what is wrong with each.

    Broken plugins are skipped everywhere else; this command works even when a plugin's
    code cannot be imported. Set ZOO_STRICT_PLUGINS=1 to make plugin errors fatal.
    With --check, a broken plugin makes the exit status 2 (for a plugin's CI).
    """
    from zoo.plugin_check import (
        check_plugins,  # imports plugin code: only for 'zoo plugins'
    )

    reports = check_plugins(build=check)
    if as_json:
        print_json([r.as_dict() for r in reports])
    else:
        print_table(
            None,
            ["PLUGIN", "DISTRIBUTION", "MODELS", "DATASETS", "STATUS"],
            ((r.name, f"{r.distribution} {r.version}", r.models, r.datasets, r.status) for r in reports),
        )
    if not check and not as_json:
        click.echo("(plugin models were not built; 'zoo plugins --check' builds each one)", err=True)
    broken = [r.name for r in reports if r.problems]
    if check and broken:
        raise ZooError(f"{len(broken)} plugin(s) broken: {', '.join(broken)}; their STATUS says what is wrong")
