"""Small fully-convolutional 3D U-Net (4 resolution levels, InstanceNorm, LeakyReLU)."""
import torch
import torch.nn as nn


class ConvBlock(nn.Sequential):
    def __init__(self, cin, cout, stride=1):
        super().__init__(
            nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.InstanceNorm3d(cout, affine=True),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv3d(cout, cout, 3, padding=1, bias=False),
            nn.InstanceNorm3d(cout, affine=True),
            nn.LeakyReLU(0.01, inplace=True),
        )


class UNet3D(nn.Module):
    """Input [N,1,D,H,W] with D,H,W multiples of 2**(levels-1) (16 for 5 levels, 8 for 4).
    Output logits [N,num_classes,D,H,W]."""

    def __init__(self, num_classes=5, base=8, levels=5, max_ch=128):
        super().__init__()
        ch = [min(base * 2 ** i, max_ch) for i in range(levels)]
        self.enc = nn.ModuleList([ConvBlock(1, ch[0])] + [ConvBlock(ch[i - 1], ch[i], stride=2) for i in range(1, levels)])
        self.up = nn.ModuleList([nn.ConvTranspose3d(ch[i], ch[i - 1], 2, stride=2, bias=False) for i in range(levels - 1, 0, -1)])
        self.dec = nn.ModuleList([ConvBlock(2 * ch[i - 1], ch[i - 1]) for i in range(levels - 1, 0, -1)])
        self.head = nn.Conv3d(ch[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = up(x)
            x = dec(torch.cat([x, skips.pop()], 1))
        return self.head(x)


def count_params(m):
    return sum(p.numel() for p in m.parameters())
