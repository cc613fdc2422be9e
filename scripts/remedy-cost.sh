#!/usr/bin/env bash
# The img/s each failure-mode remedy costs: `bench train-step` without and with the flag, side by
# side, three alternating pairs each, 32 px gray, batch 64. Prints: name plain_img_s remedy_img_s.
set -euo pipefail
B=${B:-.build/release/darkroom}
bench() { "$B" bench train-step --size 32 --channels 1 --batch 64 --iterations 20 "$@" | python3 -c "import json,sys;print(round(json.load(sys.stdin)['img_per_s'],1))"; }
while IFS='|' read -r name args; do
  for _ in 1 2 3; do
    # shellcheck disable=SC2086
    echo "$name $(bench) $(bench $args)"
  done
done <<'L'
ttur|--lr-d 4e-4 --lr-g 1e-4
sphere|--noise sphere
dsteps2|--d-steps 2
inoise|--instance-noise 0.1
wgangp|--loss wgan-gp
r1|--r1 0.01
dragan|--dragan 10
fm|--feature-matching
replay|--replay 0.5
unroll3|--unroll 3
mbstd|--minibatch-std
upsample|--generator upsample
quality|--preset quality
L
