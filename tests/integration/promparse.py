"""A small, strict parser of the Prometheus text exposition format 0.0.4:
every sample line must parse, belong to a family declared by # TYPE
before it, use a valid metric name and label syntax, and carry a float
value; a family is declared once; counters and gauges only (what imqtt
exposes), histograms with _bucket/_sum/_count."""
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?,?\})? (\S+)(?: (-?\d+))?$" % (NAME, LABEL, LABEL))


class ParseError(Exception):
    pass


def _value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(s)
    except ValueError:
        raise ParseError("bad value %r" % s)


def parse(text):
    """-> {family: {"type":, "help":, "samples": [(name, {labels}, value)]}}"""
    if not text.endswith("\n"):
        raise ParseError("exposition must end with a newline")
    fams = {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            raise ParseError("line %d: empty line" % n)
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                raise ParseError("line %d: bad %s" % (n, parts[1]))
            fam = fams.setdefault(parts[2], {"type": None, "help": None, "samples": []})
            key = parts[1].lower()
            if fam[key] is not None:
                raise ParseError("line %d: second %s for %s" % (n, parts[1], parts[2]))
            if fam["samples"]:
                raise ParseError("line %d: %s after samples of %s" % (n, parts[1], parts[2]))
            if key == "type" and parts[3] not in ("counter", "gauge", "histogram",
                                                  "summary", "untyped"):
                raise ParseError("line %d: unknown type %s" % (n, parts[3]))
            fam[key] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ParseError("line %d: not a sample: %r" % (n, line))
        name, labels, value = m.group(1), m.group(2), _value(m.group(3))
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        fam = fams.get(name) or fams.get(base)
        if fam is None or fam["type"] is None:
            raise ParseError("line %d: sample of %s before its # TYPE" % (n, name))
        lab = {}
        if labels:
            for k, v in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels):
                if k in lab:
                    raise ParseError("line %d: duplicate label %s" % (n, k))
                lab[k] = v
        if fam["type"] == "counter" and value < 0:
            raise ParseError("line %d: negative counter" % n)
        fam["samples"].append((name, lab, value))
    return fams


def value(fams, name, **labels):
    for fam in fams.values():
        for n, lab, v in fam["samples"]:
            if n == name and lab == labels:
                return v
    raise KeyError((name, labels))
