#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench hot_paths` run as a
Markdown table (median, median absolute deviation), from criterion's
`target/criterion/<group>/<bench>/new/estimates.json`."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def human(ns):
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.2f} ns"


print("| benchmark | median | spread (MAD) |")
print("|---|---|---|")
for path in sorted(root.glob("*/*/new/estimates.json")):
    estimates = json.loads(path.read_text())
    name = f"{path.parts[-4]}/{path.parts[-3]}"
    median = estimates["median"]["point_estimate"]
    spread = estimates["median_abs_dev"]["point_estimate"]
    print(f"| `{name}` | {human(median)} | ± {human(spread)} |")
