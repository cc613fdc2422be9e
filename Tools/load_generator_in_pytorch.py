"""Load a Darkroom generator checkpoint into PyTorch's DCGAN generator and check it reproduces
`darkroom generate` output exactly from the same latents.

    pip install torch safetensors pillow numpy
    darkroom generate --model RUN --count 100 --out GEN --no-ema
    python Tools/load_generator_in_pytorch.py RUN/checkpoints/latest.safetensors GEN --size 32 --nc 1

The generator is PyTorch's DCGAN example's (a module whose `main` is the Sequential), so the
checkpoint's `main.*` tensors load with strict=True.
"""
import argparse
import json

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import load_file


class Generator(nn.Module):
    def __init__(self, nz, ngf, nc, size):
        super().__init__()
        blocks = {32: 3, 64: 4, 128: 5}[size]
        mult = 2 ** (blocks - 1)
        layers = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        for _ in range(blocks - 1):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("generated", help="a `darkroom generate` output folder (made with --no-ema)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--nc", type=int, default=1)
    parser.add_argument("--nz", type=int, default=100)
    parser.add_argument("--ngf", type=int, default=64)
    args = parser.parse_args()
    state = {k: v for k, v in load_file(args.checkpoint).items() if k.startswith("main.")}
    net = Generator(args.nz, args.ngf, args.nc, args.size)
    net.load_state_dict(state, strict=True)
    net.eval()
    z = torch.from_numpy(np.load(f"{args.generated}/latents.npy")).view(-1, args.nz, 1, 1)
    with torch.no_grad():
        images = ((net(z).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    ours = np.stack([np.asarray(Image.open(f"{args.generated}/images/{i:06d}.png")) for i in range(len(z))])
    theirs = images[:, 0] if args.nc == 1 else images.transpose(0, 2, 3, 1)
    diff = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))
    print(json.dumps({"tensors": len(state), "images": len(z), "max_abs_diff": int(diff.max())}))


if __name__ == "__main__":
    main()
