"""A layered (Sugiyama) layout of a :class:`~zoo.diagram.graph.NetworkGraph`, top-down, in pure Python.

1. **Rows** by longest path: every layer sits one row below the lowest layer it reads.
2. **Long edges** (a skip connection spans rows) get a waypoint in every row they cross, so
   they run as their own column beside the main chain instead of behind its boxes; long edges
   from one layer share their waypoints (one column per source, as DenseNet needs).
3. **Order within a row**: barycenter sweeps down and up, keeping the order with the fewest
   crossings; on a tie a layer stays left of a waypoint, so the main chain stays in one column.
4. **Columns**: the main chain (the longest path, :meth:`NetworkGraph.main_path`) is one straight
   column; other layers are aligned with a median neighbour above them (a layer with a waypoint
   beside it prefers the layer: a residual ``add`` continues the chain, not the skip), as in
   Brandes and Köpf; the aligned blocks are packed left to right, then each block is moved
   towards its neighbours as far as the blocks beside it allow.

Units: a layer's box is 1 wide, a row is 1 high; the drawing scales them to inches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from zoo.diagram.graph import NetworkGraph

__all__ = ["Placement", "place", "LAYER_WIDTH", "WAYPOINT_WIDTH", "GAP"]

LAYER_WIDTH = 1.0
WAYPOINT_WIDTH = 0.08  # a long edge's column: narrow, so skips hug the chain
GAP = 0.22  # between neighbours in a row
SWEEPS = 12
BALANCE_ROUNDS = 30


@dataclass
class Placement:
    """Where everything goes: ``x[i]``, ``row[i]`` of layer ``i`` (row 0 at the top) and, for each
    edge of the graph in its order, the ``(x, row)`` points it passes from its source to its target."""

    x: list[float]
    row: list[int]
    routes: list[list[tuple[float, float]]]
    rows: int
    left: float
    right: float


class _Layered:
    """Layers and waypoints as vertices ``0..n-1`` (the graph's layers first), in rows, with
    their neighbours in the row above (``up``) and below (``down``)."""

    def __init__(self, graph: NetworkGraph) -> None:
        n = len(graph.layers)
        self.real = n
        self.row = _longest_path_rows(n, graph.edges)
        self.up: list[list[int]] = [[] for _ in range(n)]
        self.down: list[list[int]] = [[] for _ in range(n)]
        self.spine = {(a, b): True for a, b in graph.main_path()}  # the main chain: one column
        self.chains: list[list[int]] = []  # per edge: its vertices, source to target
        waypoints: dict[tuple[int, int], int] = {}  # (source, row): long edges from one source share a column
        for a, b in graph.edges:
            chain = [a, *(waypoints.get((a, r)) or waypoints.setdefault((a, r), self._vertex(r))
                          for r in range(self.row[a] + 1, self.row[b])), b]
            for u, v in pairwise(chain):
                if v not in self.down[u]:
                    self.down[u].append(v)
                    self.up[v].append(u)
            self.chains.append(chain)
        rows = max(self.row, default=-1) + 1
        self.order: list[list[int]] = [[] for _ in range(rows)]
        for v in sorted(range(len(self.row)), key=lambda v: (v >= self.real, v)):  # layers left of waypoints
            self.order[self.row[v]].append(v)

    def _vertex(self, row: int) -> int:
        self.row.append(row)
        self.up.append([])
        self.down.append([])
        return len(self.row) - 1

    def width(self, v: int) -> float:
        return LAYER_WIDTH if v < self.real else WAYPOINT_WIDTH


def place(graph: NetworkGraph) -> Placement:
    """Lay ``graph`` out top-down: rows, the order in each row, and every box's column."""
    layered = _Layered(graph)
    _reduce_crossings(layered)
    x = _columns(layered)
    routes = [[(x[v], layered.row[v]) for v in chain] for chain in layered.chains]
    placed = x[: layered.real]
    left = min((x[v] - layered.width(v) / 2 for v in range(len(x))), default=0.0)
    right = max((x[v] + layered.width(v) / 2 for v in range(len(x))), default=0.0)
    return Placement(placed, layered.row[: layered.real], routes, len(layered.order), left, right)


def _longest_path_rows(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Row of each layer: one below the lowest layer it reads (edges run from lower to higher index)."""
    row = [0] * n
    for a, b in sorted(edges, key=lambda e: e[1]):
        row[b] = max(row[b], row[a] + 1)
    return row


def _reduce_crossings(g: _Layered) -> None:
    """Barycenter sweeps; keeps the best order found."""
    best, fewest = [list(r) for r in g.order], _crossings(g)
    for sweep in range(SWEEPS):
        downwards = sweep % 2 == 0
        rows = range(1, len(g.order)) if downwards else range(len(g.order) - 2, -1, -1)
        for r in rows:
            neighbours = g.up if downwards else g.down
            fixed = {v: i for i, v in enumerate(g.order[r - 1 if downwards else r + 1])}
            current = {v: i for i, v in enumerate(g.order[r])}
            g.order[r].sort(key=lambda v: (_barycenter(neighbours[v], fixed, current[v]), current[v]))
        count = _crossings(g)
        if count < fewest:
            best, fewest = [list(r) for r in g.order], count
        if fewest == 0:
            break
    g.order = best


def _barycenter(neighbours: list[int], position: dict[int, int], otherwise: float) -> float:
    """The mean position of ``neighbours`` in the fixed row; ``otherwise`` without any there."""
    near = [position[u] for u in neighbours if u in position]
    return sum(near) / len(near) if near else otherwise


def _crossings(g: _Layered) -> int:
    total = 0
    for r in range(len(g.order) - 1):
        below = {v: i for i, v in enumerate(g.order[r + 1])}
        ends = [(i, below[w]) for i, v in enumerate(g.order[r]) for w in g.down[v]]
        ends.sort()
        total += sum(1 for k, (a, b) in enumerate(ends) for c, d in ends[k + 1:] if c > a and d < b)
    return total


def _columns(g: _Layered) -> list[float]:
    """x of every vertex: aligned blocks, packed, then balanced."""
    block = _align(g)
    members: dict[int, list[int]] = {}
    for v, root in enumerate(block):
        members.setdefault(root, []).append(v)
    left_of = _separations(g, block)
    right_of: dict[int, dict[int, float]] = {root: {} for root in members}
    for root, lefts in left_of.items():
        for other, sep in lefts.items():
            right_of[other][root] = max(right_of[other].get(root, 0.0), sep)
    position = _pack(members, left_of)
    _balance(g, block, members, position, left_of, right_of)
    return [position[block[v]] for v in range(len(block))]


def _align(g: _Layered) -> list[int]:
    """The block (its top vertex) of every vertex. The main chain is one block; any other vertex
    and the vertex above it share a block when each is a median neighbour of the other (see
    :func:`_medians`) and the alignment crosses neither the chain's nor one made left of it. So a
    branch runs straight down, and a join and the next fork continue in the same column."""
    root = list(range(len(g.row)))
    for r in range(1, len(g.order)):
        above = {v: i for i, v in enumerate(g.order[r - 1])}
        below = {v: i for i, v in enumerate(g.order[r])}
        spine = next(((u, v) for v in g.order[r] for u in g.up[v] if (u, v) in g.spine), None)
        if spine:
            root[spine[1]] = root[spine[0]]
        last, limit = -1, above[spine[0]] if spine else len(above)
        for v in g.order[r]:
            if spine and v == spine[1]:
                last, limit = limit, len(above)
                continue
            for u in _medians(g, v, g.up[v], above):
                if _medians(g, u, g.down[u], below)[:1] == [v] and last < above[u] < limit:
                    root[v] = root[u]
                    last = above[u]
                    break
    return root


def _medians(g: _Layered, v: int, neighbours: list[int], position: dict[int, int]) -> list[int]:
    """The middle one of ``v``'s ``neighbours`` by ``position`` (of an even count, the left one);
    of two, the one of ``v``'s kind first: a layer continues with the layer, not a skip's waypoint.
    (With more, the plain median: a join and the next fork then pick the same branch.)"""
    ordered = sorted(neighbours, key=position.__getitem__)
    if len(ordered) == 2:
        return sorted(ordered, key=lambda u: (u < g.real) != (v < g.real))
    return ordered[(len(ordered) - 1) // 2:][:1]


def _separations(g: _Layered, block: list[int]) -> dict[int, dict[int, float]]:
    """For each block: the blocks directly left of it in some row, and the distance it keeps from each."""
    left_of: dict[int, dict[int, float]] = {b: {} for b in set(block)}
    for row in g.order:
        for u, v in pairwise(row):
            sep = (g.width(u) + g.width(v)) / 2 + GAP
            a, b = block[u], block[v]
            left_of[b][a] = max(left_of[b].get(a, 0.0), sep)
    return left_of


def _pack(members: dict[int, list[int]], left_of: dict[int, dict[int, float]]) -> dict[int, float]:
    """Each block as far left as the blocks left of it allow (longest path in the constraint graph)."""
    position: dict[int, float] = {}
    pending = {b: len(lefts) for b, lefts in left_of.items()}
    right_of: dict[int, list[int]] = {b: [] for b in members}
    for b, lefts in left_of.items():
        for a in lefts:
            right_of[a].append(b)
    ready = sorted(b for b, count in pending.items() if count == 0)
    while len(position) < len(members):
        if not ready:  # a cycle: none with non-crossing alignments, but never lose a box over it
            ready.append(min((b for b in members if b not in position), key=lambda b: (pending[b], b)))
        b = ready.pop()
        if b in position:
            continue
        position[b] = max((position[a] + sep for a, sep in left_of[b].items() if a in position), default=0.0)
        for c in right_of[b]:
            pending[c] -= 1
            if pending[c] == 0:
                ready.append(c)
    return position


def _balance(g: _Layered, block: list[int], members: dict[int, list[int]], position: dict[int, float],
             left_of: dict[int, dict[int, float]], right_of: dict[int, dict[int, float]]) -> None:
    """Move each block towards the mean x of its members' neighbours, within its row neighbours' bounds."""
    for _ in range(BALANCE_ROUNDS):
        moved = 0.0
        for root, vertices in members.items():
            near = [position[block[w]] for v in vertices for w in (*g.up[v], *g.down[v]) if block[w] != root]
            if not near:
                continue
            want = sum(near) / len(near)
            low = max((position[a] + sep for a, sep in left_of[root].items()), default=-float("inf"))
            high = min((position[c] - sep for c, sep in right_of[root].items()), default=float("inf"))
            new = min(max(want, low), high)
            moved = max(moved, abs(new - position[root]))
            position[root] = new
        if moved < 1e-3:
            break
