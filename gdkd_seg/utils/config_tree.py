"""Edits of a config's nested dicts and lists, in place."""
from typing import Any, Sequence


def replace_types(node: Any, old: str, new: str, drop: Sequence[str] = ()) -> int:
    """Rename every ``type=old`` to ``type=new`` below ``node`` (dicts, lists, tuples), removing the keys ``drop``
    from each renamed dict.

    Returns:
        How many were renamed.
    """
    count = 0
    if isinstance(node, dict):
        if node.get('type') == old:
            node['type'] = new
            for key in drop:
                node.pop(key, None)
            count += 1
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return 0
    return count + sum(replace_types(child, old, new, drop) for child in children)
