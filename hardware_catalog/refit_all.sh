#!/usr/bin/env bash
# Refit every catalog [perf] table from the public throughput rows, then re-copy the inherited ones.
# Run after a change to the performance model (simulator/execution/), from the repository root:
#     bash hardware_catalog/refit_all.sh [ROWS_CSV]
# ROWS_CSV defaults to ../shared/validation/public_throughput/rows.csv where it exists (the path the
# catalog's method lines name), else the packaged copy (simulator/data/public_throughput_rows.csv). Each fitted part
# gets the command in its [perf] method line; the held-out errors go to simulator/data/public_fit_heldout.csv.
# About 3.5 minutes on a 2-core machine (fits run one per CPU). Then regenerate what quotes the figures:
#     python tests/test_golden_examples.py; python tests/test_readme_claims.py  (and the README tables)
set -euo pipefail
T="${TRAINSIM:-trainsim}"
SHARED=../shared/validation/public_throughput/rows.csv
ROWS="${1:-$([ -f "$SHARED" ] && echo "$SHARED" || echo simulator/data/public_throughput_rows.csv)}"
fit() { "$T" calibrate fit --write-catalog --published "$ROWS" "$@" > /dev/null; }
inherit() { "$T" calibrate fit --write-catalog --inherit-from "$1" --accelerator "$2" > /dev/null; }

fit --accelerator nvidia-a100-sxm-80gb --accelerator nvidia-a100-sxm-40gb
for a in nvidia-h100-sxm-80gb nvidia-b200 amd-mi325x google-tpu-v4 google-tpu-v5e google-tpu-v5p google-tpu-v6e; do
    fit --accelerator "$a"
done
for a in amd-mi250x amd-mi300x amd-mi355x; do inherit amd-mi325x "$a"; done
inherit google-tpu-v4 google-tpu-v3
inherit google-tpu-v6e google-tpu7x
inherit nvidia-a100-sxm-80gb nvidia-v100-sxm2-32gb
for a in nvidia-b300 nvidia-gb200 nvidia-gb300; do inherit nvidia-b200 "$a"; done
for a in nvidia-h100-pcie-80gb nvidia-h200-sxm-141gb nvidia-h800-sxm-80gb nvidia-l40s; do inherit nvidia-h100-sxm-80gb "$a"; done
# No Intel or AWS part has usable published rows: the best-measured part of their generation (H100 SXM,
# 110 rows, four publishers) instead of the vendor-neutral A100-derived defaults (calibrate/inherit.py).
for a in intel-gaudi2 intel-gaudi3 aws-trainium1 aws-trainium2; do inherit nvidia-h100-sxm-80gb "$a"; done
echo "refitted: $(git status --short hardware_catalog simulator/data | wc -l) files changed"
