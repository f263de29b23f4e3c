#!/usr/bin/env bash
# Check that data/devman and data/devsge (and dump/raw/<set> once stage 2 formatted them) hold
# exactly the utterances of the SEAME-dev-set lists used in stage 1, no more, no fewer: with the
# published lists 6,531 (devman) and 5,321 (devsge). Exit status 1 and the differences otherwise.
set -euo pipefail

dev_lists=data/local/seame_dev_set  # linked by local/data.sh to its --dev_lists
data_dir=data
dump_dir=dump/raw
help_message="Usage: $0 [--dev_lists ${dev_lists}] [--data_dir ${data_dir}] [--dump_dir ${dump_dir}]"
. utils/parse_options.sh
. ./path.sh

python3 -m espnet_cs.bin.prep_corpus check_seame --dev_lists "${dev_lists}" --data_dir "${data_dir}" \
    --dump_dir "${dump_dir}"
