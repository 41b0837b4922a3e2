#!/usr/bin/env python3
"""Batch CEL oracle for Portcullis's differential tests.

Reads JSON lines from stdin, each {"id": N, "expr": "...", "bindings": {...}}, evaluates the
expression with the `common-expression-language` package (cel-rust through PyO3, version
0.10.0) and writes one JSON line per case to stdout:

    {"id": N, "ok": true, "type": "int", "value": 3}
    {"id": N, "ok": false, "error": "..."}

Value encoding: null/bool/int/double/string/list/map as plain JSON (map keys as strings; the
"keys" field lists the original key types when they are not all strings), bytes as
{"bytes_b64": ...}, NaN and infinities as the strings "NaN", "Infinity", "-Infinity".
One process serves a whole test run: the Swift test starts it once and streams cases through.
"""
import base64
import datetime
import json
import math
import sys

import cel


def encode(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"bytes_b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, (list, tuple)):
        return [encode(x) for x in value]
    if isinstance(value, dict):
        return {str(encode(k)): encode(x) for k, x in value.items()}
    return repr(value)


TYPE_NAMES = {type(None): "null", bool: "bool", int: "int", float: "double", str: "string",
              bytes: "bytes", list: "list", dict: "map"}


def evaluate(expr, bindings):
    context = cel.Context()
    context.update(bindings)
    try:
        value = cel.evaluate(expr, context)
    except BaseException as error:  # cel-rust panics surface as PanicException (a BaseException)
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return {"ok": True, "type": TYPE_NAMES.get(type(value), type(value).__name__), "value": encode(value)}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        case = json.loads(line)
        result = evaluate(case["expr"], case.get("bindings", {}))
        result["id"] = case.get("id")
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
