"""Prometheus / OpenMetrics text helpers shared by smoke.sh's embedded snippets (stdlib only)."""


def labels_end(line: str, start: int) -> int:
    """Index just past the label set that opens at line[start] == "{".

    Label values may hold "}" (route templates), " # " or escaped quotes, so the scan tracks quoting.
    """
    j, quoted = start + 1, False
    while j < len(line):
        c = line[j]
        if quoted:
            if c == "\\":
                j += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "}":
            return j + 1
        j += 1
    return len(line)
