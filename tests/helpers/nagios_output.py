#!/usr/bin/env python3
"""Strict reader of a Nagios plugin's output, as the Nagios Plugin
Development Guidelines define it (sections "Plugin Output" and
"Performance data"):

    TEXT|PERFDATA

TEXT is "SERVICE STATE - text" on one line and holds no '|'.  PERFDATA
is a space-separated list of

    'label'=value[UOM];[warn];[crit];[min];[max]

where the quotes around the label are needed only for spaces, a quote
inside it is written twice, and a label holds no '=' (nor, here, any
control character); value, min and max are numbers ([-0-9.]); UOM is one
of s us ms % B KB MB TB c; warn and crit are ranges
([@][start:][end], start may be ~); trailing empty fields may be left
out.  Labels are unique.

Usage: nagios_output.py EXIT_STATUS SERVICE < output
Prints one line per performance datum, fields separated by tabs:
label value uom warn crit min max.  Exits 1 with the reason if the output
breaks any of this.
"""
import re
import sys

NUM = r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
UOM = r"(?:s|us|ms|%|B|KB|MB|TB|c)?"
RANGE = rf"@?(?:(?:{NUM}|~):)?(?:{NUM})?"
LABEL = r"(?:'(?:[^'=\x00-\x1f\x7f]|'')+'|[^'= \x00-\x1f\x7f]+)"
DATUM = re.compile(
    rf"({LABEL})=({NUM})({UOM})"
    rf"(?:;({RANGE})(?:;({RANGE})(?:;({NUM})?(?:;({NUM})?)?)?)?)?")
STATES = ["OK", "WARNING", "CRITICAL", "UNKNOWN"]


def fail(why):
    sys.exit("nagios_output.py: " + why)


def main():
    code, service = int(sys.argv[1]), sys.argv[2]
    data = sys.stdin.buffer.read()
    if not data.endswith(b"\n") or data.count(b"\n") != 1:
        fail("not exactly one line: %r" % data)
    try:
        line = data[:-1].decode("utf-8")
    except UnicodeDecodeError as e:
        fail("not UTF-8: %s" % e)
    text, bar, perf = line.partition("|")
    if not 0 <= code <= 3:
        fail("exit status %d is not a plugin state (0 to 3)" % code)
    head = "%s %s - " % (service, STATES[code])
    if not text.startswith(head) or len(text) == len(head):
        fail("text does not start with %r, or says nothing: %r" % (head, text))
    if re.search(r"[\x00-\x1f\x7f]", text):
        fail("control character in the text: %r" % text)
    if not bar:
        return
    perf = perf.lstrip(" ")
    if not perf:
        fail("'|' without performance data")
    seen, out = set(), []
    pos = 0
    while pos < len(perf):
        m = DATUM.match(perf, pos)
        if not m:
            fail("performance data do not match the grammar at %r" % perf[pos:])
        pos = m.end()
        if pos < len(perf):
            if perf[pos] != " " or pos + 1 == len(perf):
                fail("performance data not separated by one space at %r"
                     % perf[pos:])
            pos += 1
        label = m.group(1)
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        if label in seen:
            fail("label given twice: %r" % label)
        seen.add(label)
        out.append("\t".join([label] + [g or "" for g in m.groups()[1:]]))
    print("\n".join(out))


main()
