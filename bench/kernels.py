"""Which nodes of a graph have no GPU kernel for the dtypes they use, read from TensorFlow's
kernel registry (no GPU needed), and where each comes from. `bench gpu-ready` runs it over the
toolkit's graphs.

A node's kernel is looked up the way tensorflow/core/framework/op_kernel.cc
FindKernelRegistration does: among the KernelDefs registered for (op, "GPU"), one whose label is
empty and whose every constraint allows the node's value of that attr (every element of a list
attr); if there is none, one of the (op, "DEFAULT") ones (DEVICE_DEFAULT kernels serve every
real device, GPUs included; many keep their arguments in host memory, e.g. Where<int32>). With
the CUDA build of TensorFlow every answer is cross-checked with TensorFlow's own C++ matcher.

`walk` visits a GraphDef and, recursively, every function reached from it (while-loop
conditions and bodies, their gradient loops, tf.cond branches, function calls). A Session
lowers functional While/If ops into Enter/Exit/Switch/Merge/NextIteration/LoopCond before it
places them, so those are checked too, for every loop-carried dtype (`lowered`).
"""

import collections
import re
from typing import NamedTuple

from tensorflow.core.framework import attr_value_pb2, node_def_pb2, types_pb2
from tensorflow.python.framework import dtypes, op_def_registry

GPU = "/device:GPU:0"

# Host ops placed on the CPU by design, by where they come from: the first name scope of the
# node. Checkpoint ops are tf.train.Saver's (scope save, save_1, ...): they have CPU kernels
# only and run on the CPU by soft placement or the Saver's own placement. The others must be
# placed on the CPU by the toolkit explicitly (a `tf.device` block), else they count as ops of
# the training step or the decoder loop.
HOST_PARTS = (
    (re.compile(r"save(_\d+)?$"), "checkpoints (tf.train.Saver)"),
    (re.compile(r"train_state"), "loop state train_state (zero/train_graph.py)"),
    (re.compile(r"(source_ids|target_text)$"), "export text processing (zero/export.py)"),
)
SAVER_PART = HOST_PARTS[0][1]


class Missing(NamedTuple):
    """A node (or a node a Session lowers a functional op into) without a GPU kernel."""

    op: str
    dtypes: str  # the node's type attrs, e.g. "T=string, Tshape=int32"
    path: tuple  # caller nodes and function names down to the node
    device: str  # the device the graph asks for ("" = none: soft placement decides)
    lowered_from: str = ""  # While/If for the control-flow ops a Session lowers them into

    @property
    def name(self):
        return "/".join(self.path)


# -- the registry --------------------------------------------------------------------------------


def matches(kernel_def, attrs):
    """TensorFlow's KernelAttrsMatch: a label needs a matching _kernel attr, and every
    constraint allows the node's value (each element of a list attr). Constraints are on types
    (T, dtype, Tidx, ...) and a few on strings, ints or bools."""
    if kernel_def.label:
        label = attrs.get("_kernel")
        if label is None or label.s.decode() != kernel_def.label:
            return False
    for constraint in kernel_def.constraint:
        allowed = constraint.allowed_values.list
        field = next((f for f in ("type", "s", "i", "b") if len(getattr(allowed, f))), None)
        value = attrs.get(constraint.name)
        if value is None or field is None:
            return False
        kind = value.WhichOneof("value")
        if kind == field:
            values = [getattr(value, field)]
        elif kind == "list":
            values = list(getattr(value.list, field))
        else:
            return False
        if any(v not in set(getattr(allowed, field)) for v in values):
            return False
    return True


class Registry:
    """The KernelDefs of a TensorFlow build, looked up as a GPU placement would."""

    def __init__(self, kernel_defs, cpp_find=None):
        self._by_key = collections.defaultdict(list)
        self._constrained = collections.defaultdict(set)  # op -> attrs its kernels constrain
        for k in kernel_defs:
            self._by_key[(k.op, k.device_type)].append(k)
            self._constrained[k.op].update(c.name for c in k.constraint)
        self._cpp_find = cpp_find
        self._memo = {}
        self.disagreements = []  # (op, dtypes, Python's answer, the C++ kernel class)

    def gpu_kernels(self):
        return sum(len(v) for (_, device), v in self._by_key.items() if device == "GPU")

    def find(self, op, attrs):
        """'GPU' or 'DEFAULT' (the registration a GPU placement uses), or None."""
        key = (op,) + tuple(
            (n, attrs[n].SerializeToString(deterministic=True))
            for n in sorted(self._constrained[op] | {"_kernel"})
            if n in attrs
        )
        if key not in self._memo:
            via = next(
                (
                    device
                    for device in ("GPU", "DEFAULT")
                    if any(matches(k, attrs) for k in self._by_key.get((op, device), ()))
                ),
                None,
            )
            if self._cpp_find is not None:
                found = self._cpp_find(op, attrs)
                if bool(found) != bool(via):
                    self.disagreements.append((op, type_text(op, attrs), via, found))
            self._memo[key] = via
        return self._memo[key]

    def allowed(self, op):
        """What the GPU and DEFAULT kernels of `op` accept, for the report."""
        out = []
        for device in ("GPU", "DEFAULT"):
            per_attr = collections.defaultdict(set)
            for k in self._by_key.get((op, device), ()):
                for c in k.constraint:
                    per_attr[c.name].update(type_name(t) for t in c.allowed_values.list.type)
                if not k.constraint:
                    per_attr["(any)"].add("any")
            out += [f"{device} {n}: {','.join(sorted(t))}" for n, t in sorted(per_attr.items())]
        return "; ".join(out) or "no GPU or DEFAULT kernel"


def from_tensorflow():
    """The registry of the TensorFlow build this process loaded, cross-checked with its C++
    matcher."""
    from tensorflow.python.framework import kernels

    return Registry(kernels.get_all_registered_kernels().kernel, cpp_kernel_class)


def cpp_kernel_class(op, attrs):
    """TensorFlow's own answer: the kernel class for the node on a GPU, or ''."""
    from tensorflow.python.util import _pywrap_kernel_registry

    node = node_def_pb2.NodeDef(name="probe", op=op, device=GPU)
    for k, v in attrs.items():
        node.attr[k].CopyFrom(v)
    return _pywrap_kernel_registry.TryFindKernelClass(node.SerializeToString()).decode()


# -- nodes -----------------------------------------------------------------------------------------


def type_name(t):
    return dtypes.as_dtype(t).name if t else "?"


def with_defaults(op, attrs):
    """The node's attrs plus its OpDef's defaults (function bodies may leave them out)."""
    full = dict(attrs)
    op_def = op_def_registry.get(op)
    for a in op_def.attr if op_def is not None else ():
        if a.name not in full and a.HasField("default_value"):
            full[a.name] = a.default_value
    return full


def type_text(op, attrs):
    """The node's type attrs as text: "T=float32, Tidx=int32" (a long list: its dtypes)."""
    op_def = op_def_registry.get(op)
    out = []
    for a in op_def.attr if op_def is not None else ():
        if a.name not in attrs:
            continue
        if a.type == "type":
            out.append(f"{a.name}={type_name(attrs[a.name].type)}")
        elif a.type == "list(type)":
            types = [type_name(t) for t in attrs[a.name].list.type]
            text = ",".join(types) if len(types) <= 4 else ",".join(sorted(set(types))) + ",..."
            out.append(f"{a.name}=[{text}]")
    return ", ".join(out)


def lowered(op, attrs):
    """[(op, attrs)] of the v1 control-flow nodes a Session lowers a While or If into."""
    out = []

    def typed(name, t):
        out.append((name, {"T": attr_value_pb2.AttrValue(type=t)}))

    if op in ("While", "StatelessWhile"):
        for t in attrs["T"].list.type:
            for name in ("Enter", "Exit", "Switch", "Merge", "NextIteration"):
                typed(name, t)
        out.append(("LoopCond", {}))
    elif op in ("If", "StatelessIf"):
        for t in attrs["Tin"].list.type:
            typed("Switch", t)
        for t in attrs["Tout"].list.type:
            typed("Merge", t)
        typed("Switch", types_pb2.DT_BOOL)
    return out


def _colocated(node, devices):
    """The device of the node `node` is colocated with (its _class attr), or ''."""
    for entry in node.attr["_class"].list.s if "_class" in node.attr else ():
        name = entry.decode().removeprefix("loc:@")
        if devices.get(name):
            return devices[name]
    return ""


def walk(graph_def):
    """Yields (NodeDef, path, device) for every node of the graph and of every function reached
    from it. device: the node's own, else the one of the node it is colocated with, else its
    caller's."""
    library = {f.signature.name: f for f in graph_def.library.function}
    seen = set()

    def called(node):
        for value in node.attr.values():
            if value.HasField("func"):
                yield value.func.name
            yield from (f.name for f in value.list.func)
        if node.op in library:
            yield node.op

    def visit(nodes, path, inherited):
        devices = {n.name: n.device for n in nodes}
        for node in nodes:
            device = node.device or _colocated(node, devices) or inherited
            yield node, path + (node.name,), device
            for name in called(node):
                if name in library and name not in seen:
                    seen.add(name)
                    yield from visit(library[name].node_def, path + (node.name, name), device)

    yield from visit(graph_def.node, (), "")


def missing_kernels(graph_def, registry):
    """(the Missing of every node without a GPU kernel, the number of nodes checked)."""
    library = {f.signature.name for f in graph_def.library.function}
    missing, checked = [], 0
    for node, path, device in walk(graph_def):
        if node.op in library:  # a call: the function's body is walked
            continue
        checked += 1
        candidates = [(node.op, dict(node.attr), "")]
        candidates += [(op, a, node.op) for op, a in lowered(node.op, node.attr)]
        for op, attrs, origin in candidates:
            if any(v.WhichOneof("value") == "placeholder" for v in attrs.values()):
                continue  # a generic function's attr, set by its callers (checked there)
            attrs = with_defaults(op, attrs)
            if registry.find(op, attrs) is None:
                missing.append(Missing(op, type_text(op, attrs), path, device, origin))
    return missing, checked


# -- classification --------------------------------------------------------------------------------


def on_cpu(device):
    return bool(device) and "CPU" in device.upper()


def host_part(m):
    """Where a host op placed on the CPU by design comes from (HOST_PARTS), or None for an op
    of the training step or the decoder loop. A node placed on the CPU explicitly but outside
    those parts is a host op of its own kind, named by its first scope."""
    top = m.path[0].split("/")[0]
    for pattern, part in HOST_PARTS:
        if pattern.match(top) and (on_cpu(m.device) or part == SAVER_PART):
            return part
    return f"other CPU-placed ops ({top})" if on_cpu(m.device) else None
