"""MATLAB's side of a layer spec: read a layer array as a student writes it, print one as
``net.Layers`` does. Torch-free.

Reads ``layers = [ ... ];`` or a bare list of layer calls, separated by newlines, ``,``, ``;``
or spaces; ``%`` and ``%{ ... %}`` comments; ``...`` continuations; numbers, row vectors,
'single' or "double" quoted strings; name-value options (case-insensitive) as ``'Name', v``
or ``Name=v``. Anything else (variables, other statements) is refused, naming file and line.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, NamedTuple

from zoo.errors import ZooError
from zoo.layers.spec import (
    LAYER_TYPES,
    WINDOWED,
    check_layers,
    reporting,
    shapes_and_parameters,
    show,
)

__all__ = ["parse_layers", "describe"]

MAX_TEXT = 1_000_000  # characters
_FUNCTIONS = {t.function.lower(): t for t in LAYER_TYPES.values()}
_TOKEN = re.compile(r"""
    (?P<space>[ \t]+)
  | (?P<continuation>\.\.\.[^\r\n]*)
  | (?P<comment>%[^\r\n]*)
  | (?P<newline>\r\n|\r|\n)
  | (?P<number>(?:\d+(?:\.(?!\.\.)\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z][A-Za-z0-9_]*)
  | (?P<string>'(?:[^'\r\n]|'')*'|"(?:[^"\r\n]|"")*")
  | (?P<punct>[()\[\],;=+\-])
""", re.VERBOSE)


class Token(NamedTuple):
    kind: str  # number, word, string, newline, end, or the punctuation itself
    value: Any
    line: int
    end: int  # offset just after the token


class Arg(NamedTuple):
    value: Any
    line: int
    keyword: str = ""  # set for Name=Value syntax


def _blank_block_comments(text: str) -> str:
    """Empty the lines of ``%{`` ... ``%}`` blocks (kept, so line numbers stay right)."""
    lines, depth = text.split("\n"), 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        depth += stripped == "%{"
        if depth:
            lines[i] = ""
        depth -= depth > 0 and stripped == "%}"
    return "\n".join(lines)


def _tokenize(text: str, source: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line, continued = 0, 1, False
    while pos < len(text):
        if text[pos] == "'" and tokens and tokens[-1].end == pos and tokens[-1].kind in ("number", "word", "]", ")"):
            pos += 1  # a transpose, as in [28 28 1]': the same vector to us
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] in "'\"":
                raise ZooError(f"{source}:{line}: unterminated string {show(text[pos:pos + 20])}")
            raise ZooError(f"{source}:{line}: unexpected character {show(text[pos])}")
        kind, value = match.lastgroup, match.group()
        if kind == "newline":
            if not continued:
                tokens.append(Token("newline", value, line, match.end()))
            line, continued = line + 1, False
        elif kind == "continuation":
            continued = True
        elif kind == "number":
            number = float(value)
            tokens.append(Token(kind, int(value) if value.isdigit() else number, line, match.end()))
        elif kind == "string":
            quote = value[0]
            tokens.append(Token(kind, value[1:-1].replace(quote * 2, quote), line, match.end()))
        elif kind == "word":
            tokens.append(Token(kind, value, line, match.end()))
        elif kind == "punct":
            tokens.append(Token(value, value, line, match.end()))
        pos = match.end()
    tokens.append(Token("end", "", line, pos))
    return tokens


def _describe_token(token: Token) -> str:
    return {"newline": "the end of the line", "end": "the end of the text"}.get(
        token.kind, show(token.value) if token.kind == "string" else str(token.value))


class _Parser:
    def __init__(self, tokens: list[Token], source: str):
        self.tokens, self.source, self.pos = tokens, source, 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, message: str, token: Token | None = None) -> ZooError:
        return ZooError(f"{self.source}:{(token or self.peek()).line}: {message}")

    def skip_separators(self) -> None:
        while self.peek().kind in ("newline", ",", ";"):
            self.take()

    def program(self) -> list[tuple[Token, list[Arg]]]:
        self.skip_separators()
        opening = None
        if self.peek().kind == "word" and self.peek(1).kind == "=" and self.peek(2).kind == "[":
            self.pos += 2
        if self.peek().kind == "[":
            opening = self.take()
        calls = []
        while True:
            self.skip_separators()
            token = self.peek()
            if token.kind == "end":
                if opening:
                    raise self.fail(f"missing ']' to close the layer array opened on line {opening.line}")
                return calls
            if opening and token.kind == "]":
                self.take()
                self.skip_separators()
                if self.peek().kind != "end":
                    raise self.fail(f"only the layer array is read; found {_describe_token(self.peek())} "
                                    "after its ']'")
                return calls
            if token.kind == "word" and self.peek(1).kind == "=":
                raise self.fail(f"'{token.value} = ...' is not a layer (only the layer array is read)")
            if token.kind != "word":
                raise self.fail(f"expected a layer, found {_describe_token(token)}")
            calls.append(self.call())

    def call(self) -> tuple[Token, list[Arg]]:
        head = self.take()
        kind = _FUNCTIONS.get(head.value.lower())
        if kind is None:
            known = [t.function for t in LAYER_TYPES.values()]
            near = difflib.get_close_matches(head.value, known, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise self.fail(f"unknown layer '{head.value}' ({hint}known: {', '.join(known)})", head)
        args: list[Arg] = []
        if self.peek().kind != "(":
            return head, args
        self.take()
        while self.peek().kind != ")":
            if self.peek().kind == "word" and self.peek(1).kind == "=":
                name = self.take()
                self.take()
                args.append(Arg(self.value(kind.function), name.line, keyword=name.value))
            else:
                args.append(Arg(self.value(kind.function), self.peek().line))
            if self.peek().kind == ",":
                self.take()
            elif self.peek().kind != ")":
                raise self.fail(f"{kind.function}: expected ',' or ')', found {_describe_token(self.peek())} "
                                "(continue a call on the next line with '...')")
        self.take()
        return head, args

    def value(self, function: str) -> Any:
        token = self.take()
        if token.kind in ("+", "-") and self.peek().kind == "number":
            return -self.take().value if token.kind == "-" else self.take().value
        if token.kind in ("number", "string"):
            return token.value
        if token.kind == "[":
            items = []
            while self.peek().kind != "]":
                if self.peek().kind in (",", ";", "newline"):
                    self.take()
                elif self.peek().kind in ("number", "+", "-"):
                    items.append(self.value(function))
                else:
                    raise self.fail(f"{function}: a vector may hold only numbers, found "
                                    f"{_describe_token(self.peek())}")
            self.take()
            return items
        if token.kind == "word":
            raise self.fail(f"{function}: {token.value} is a variable or function, which is not read here; "
                            f"write its value (or quote text: '{token.value}')", token)
        raise self.fail(f"{function}: expected a value, found {_describe_token(token)}", token)


def _to_layer(head: Token, args: list[Arg], source: str) -> dict[str, Any]:
    """Positional arguments first, then name-value options, into a raw spec dict."""
    kind = _FUNCTIONS[head.value.lower()]
    positional = [f for f in kind.fields if f.positional]
    options = {f.label.lower(): f for f in kind.fields if not f.positional}
    layer: dict[str, Any] = {"type": kind.type}
    i = 0
    while i < len(args) and not args[i].keyword and not isinstance(args[i].value, str):
        if i >= len(positional):
            takes = ", ".join(f.label for f in positional) or "no arguments"
            raise ZooError(f"{source}:{args[i].line}: {kind.function}: too many arguments (it takes {takes}, "
                           "then name-value options)")
        layer[positional[i].key] = args[i].value
        i += 1
    while i < len(args):
        arg = args[i]
        name, i = (arg.keyword, i) if arg.keyword else (arg.value, i + 1)
        if not isinstance(name, str):
            raise ZooError(f"{source}:{arg.line}: {kind.function}: expected an option name such as 'Name', "
                           f"found {show(name)}")
        field = options.get(name.lower())
        if field is None:
            near = difflib.get_close_matches(name.lower(), list(options), n=1)
            hint = (f"did you mean '{options[near[0]].label}'?" if near
                    else "options: " + ", ".join(f.label for f in options.values()))
            raise ZooError(f"{source}:{arg.line}: {kind.function}: unknown option {show(name)} ({hint})")
        if i >= len(args):
            raise ZooError(f"{source}:{arg.line}: {kind.function}: option '{field.label}' has no value")
        if field.key in layer:
            raise ZooError(f"{source}:{arg.line}: {kind.function}: option '{field.label}' is given twice")
        layer[field.key] = args[i].value
        i += 1
    layer["line"] = head.line
    return layer


def parse_layers(text: str, source: str = "<text>") -> list[dict[str, Any]]:
    """Read a MATLAB layer array into a checked spec (see :func:`zoo.layers.validate_layers`).

    ``source`` names the text in errors: ``lab6.m:7: unknown layer 'convolution3dLayer' (...)``.
    """
    if not isinstance(text, str):
        raise ZooError(f"{source}: layer text must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ZooError(f"{source}: {len(text):,} characters is too long for a layer array")
    calls = _Parser(_tokenize(_blank_block_comments(text), source), source).program()
    if not calls:
        raise ZooError(f"{source}: no layers found (expected e.g. layers = [imageInputLayer([28 28 1]) ...];)")
    layers = [_to_layer(head, args, source) for head, args in calls]
    with reporting(layers, source):
        return check_layers(layers)


def describe(layers: Any) -> list[str]:
    """One line per layer, like MATLAB's ``net.Layers``: index, name, type, description."""
    with reporting(layers):
        checked = check_layers(layers)
        shapes = shapes_and_parameters(checked)[0]
    rows = [(str(i + 1), show(layer["name"]), LAYER_TYPES[layer["type"]].title,
             _description(layer, shapes[i - 1] if i else shapes[0])) for i, layer in enumerate(checked)]
    widths = [max(len(row[col]) for row in rows) for col in range(3)]
    return [f"{i:>{widths[0]}}  {name:<{widths[1]}}  {title:<{widths[2]}}  {text}" for i, name, title, text in rows]


def _description(layer: dict[str, Any], in_shape: tuple[int, ...]) -> str:
    t = layer["type"]
    vec = lambda v: "[" + " ".join(map(str, v)) + "]"  # noqa: E731
    if t == "imageinput":
        h, w, c = layer["input_size"]
        norm = layer["normalization"]
        return f"{h}×{w}×{c} images" + (f" with '{norm}' normalization" if norm != "none" else "")
    if t in WINDOWED:
        window = layer.get("filter_size") or layer["pool_size"]
        pad = "'same'" if layer["padding"] == "same" else vec(layer["padding"])
        what = {"convolution2d": f"{layer.get('filters')} {window[0]}×{window[1]} convolutions",
                "maxpooling2d": f"{window[0]}×{window[1]} max pooling",
                "averagepooling2d": f"{window[0]}×{window[1]} average pooling"}[t]
        dilation = layer.get("dilation", [1, 1])
        return f"{what} with stride {vec(layer['stride'])} and padding {pad}" + (
            f" and dilation {vec(dilation)}" if dilation != [1, 1] else "")
    return {"batchnormalization": f"Batch normalization with {in_shape[0]} channels",
            "relu": "ReLU", "leakyrelu": f"Leaky ReLU with scale {layer.get('scale', 0):g}",
            "globalaveragepooling2d": "Global average pooling",
            "dropout": f"{layer.get('probability', 0) * 100:g}% dropout",
            "fullyconnected": f"{layer.get('output_size')} fully connected layer",
            "softmax": "softmax", "classification": "crossentropyex"}[t]
