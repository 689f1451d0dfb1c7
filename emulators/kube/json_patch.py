"""The three PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(Exception):
    """A patch that cannot be applied (422) or decoded (400)."""

    def __init__(self, message: str, *, decode: bool = False) -> None:
        super().__init__(message)
        self.decode = decode


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer_tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _list_index(container: list[Any], token: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds")
    return index


def _resolve_parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, for_add=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}: missing value")
    return node


def _get_at(doc: Any, path: str) -> Any:
    tokens = _pointer_tokens(path)
    if not tokens:
        return doc
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing key: {path!r}: missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_list_index(parent, last, for_add=False)]
    raise PatchError(f"doc is missing path: {path!r}: missing value")


def _remove_at(doc: Any, path: str) -> Any:
    tokens = _pointer_tokens(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, for_add=False))
    raise PatchError(f"doc is missing path: {path!r}: missing value")


def _add_at(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer_tokens(path)
    if not tokens:
        return copy.deepcopy(value)
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if replace:
            parent[_list_index(parent, last, for_add=False)] = copy.deepcopy(value)
        else:
            parent.insert(_list_index(parent, last, for_add=True), copy.deepcopy(value))
    else:
        raise PatchError(f"doc is missing path: {path!r}: missing value")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON Patch on a copy of `target`."""
    if not isinstance(operations, list):
        kind = type(operations).__name__
        raise PatchError(f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Patch", decode=True)
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError("Unexpected kind: missing op", decode=True)
        name = op["op"]
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"operation {name!r} is missing path", decode=True)
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {name!r} is missing value", decode=True)
        if name == "add":
            doc = _add_at(doc, path, op["value"])
        elif name == "remove":
            _remove_at(doc, path)
        elif name == "replace":
            doc = _add_at(doc, path, op["value"], replace=True)
        elif name == "test":
            if _get_at(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        elif name in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {name!r} is missing from", decode=True)
            value = _remove_at(doc, source) if name == "move" else copy.deepcopy(_get_at(doc, source))
            doc = _add_at(doc, path, value)
        else:
            raise PatchError(f"Unexpected kind: {name}", decode=True)
    return doc


_SMP_DELETE = object()


# Lists in the built-in kinds served here whose Go tags declare `patchStrategy:"merge"`.
_SMP_MERGE_KEYS: dict[tuple[str, ...], str | None] = {
    ("metadata", "finalizers"): None,  # primitive list: union
    ("metadata", "ownerReferences"): "uid",
    ("secrets",): "name",  # ServiceAccount.secrets
}


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Strategic merge for the built-in kinds served here (maps merge, `$patch` directives, the known
    merge-keyed lists; every other list is replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _SMP_DELETE
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            list_key = key.split("/", 1)[1]
            if isinstance(result.get(list_key), list) and isinstance(value, list):
                result[list_key] = [item for item in result[list_key] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub_path = (*path, key)
        current = result.get(key)
        if sub_path in _SMP_MERGE_KEYS and isinstance(value, list) and isinstance(current, list):
            result[key] = _merge_list(current, value, _SMP_MERGE_KEYS[sub_path])
            continue
        merged = strategic_merge_patch(current, value, sub_path)
        if merged is _SMP_DELETE:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _merge_list(current: list[Any], patch: list[Any], merge_key: str | None) -> list[Any]:
    result = copy.deepcopy(current)
    for item in patch:
        if merge_key is None:
            if item not in result:
                result.append(copy.deepcopy(item))
            continue
        if not isinstance(item, dict):
            continue
        key_value = item.get(merge_key)
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(merge_key) == key_value),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result
