"""The PyTorch baseline for `darkroom bench generate` and `bench embed`: forward-only throughput of
the same DCGAN networks (PyTorch DCGAN example's architecture), evaluation mode, no_grad.
`embed` runs D's conv blocks and max-pools each block's activation to 4x4, as Darkroom's features.

    python forward_torch.py generate|embed --size 64 --nc 3 --batch 256 --iters 5 [--threads 2]
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def generator(nz, ngf, nc, size):
    blocks = {32: 3, 64: 4, 128: 5}[size]
    mult = 2 ** (blocks - 1)
    layers = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
    for _ in range(blocks - 1):
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
        mult //= 2
    layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator_blocks(ndf, nc, size):
    blocks = {32: 3, 64: 4, 128: 5}[size]
    result = [nn.Sequential(nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True))]
    mult = 1
    for _ in range(blocks - 1):
        result.append(nn.Sequential(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult * 2), nn.LeakyReLU(0.2, True)))
        mult *= 2
    return nn.ModuleList(result)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("network", choices=["generate", "embed"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--nc", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.network == "generate":
        net = generator(100, 64, args.nc, args.size).eval()
        data = torch.randn(args.batch, 100, 1, 1)
        run = lambda: net(data)
    else:
        blocks = discriminator_blocks(64, args.nc, args.size).eval()
        data = torch.rand(args.batch, args.nc, args.size, args.size) * 2 - 1

        def run():
            x, features = data, []
            for block in blocks:
                x = block(x)
                features.append(F.adaptive_max_pool2d(x, 4).flatten(1))
            return torch.cat(features, 1)
    with torch.no_grad():
        run()
        start = time.perf_counter()
        for _ in range(args.iters):
            run()
        seconds = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "network": args.network, "size": args.size, "nc": args.nc,
                      "batch": args.batch, "img_per_s": args.batch * args.iters / seconds}))


if __name__ == "__main__":
    main()
