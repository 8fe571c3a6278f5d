import torch

from recsys.autoencoder import AutoencoderConfig, MultimodalAutoencoder, autoencoder_losses, info_nce

CFG = AutoencoderConfig(modalities=(("audio", 6), ("image", 10)), hidden=16, latent_dim=8, dropout=0.0, modality_dropout=0.5)


def _inputs(b=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = {"audio": torch.randn(b, 6, generator=g), "image": torch.randn(b, 10, generator=g)}
    present = {"audio": torch.ones(b, dtype=torch.bool), "image": torch.ones(b, dtype=torch.bool)}
    return feats, present


def test_shapes_and_dtypes():
    torch.manual_seed(0)
    ae = MultimodalAutoencoder(CFG).eval()
    feats, present = _inputs()
    out = ae(feats, present, decode=True)
    assert out.latent.shape == (5, 8) and out.latent.dtype == torch.float32
    assert {k: v.shape for k, v in out.codes.items()} == {"audio": (5, 8), "image": (5, 8)}
    assert {k: v.shape for k, v in out.recon.items()} == {"audio": (5, 6), "image": (5, 10)}
    assert out.mask.shape == (5, 2) and out.mask.dtype == torch.bool


def test_single_modality_gets_latent_and_absent_modality_does_not_matter():
    torch.manual_seed(0)
    ae = MultimodalAutoencoder(CFG).eval()
    feats, present = _inputs()
    present["audio"][:] = False
    a = ae(feats, present).latent
    feats2 = {"audio": torch.randn(5, 6) * 100, "image": feats["image"]}  # garbage in the absent modality
    b = ae(feats2, present).latent
    c = ae({"image": feats["image"]}, {"image": present["image"]}).latent  # modality missing from the dicts
    assert torch.equal(a, b) and torch.allclose(a, c)
    assert a.abs().sum(1).gt(0).all()  # a post with one modality still gets a non-zero latent
    both = ae(feats, {k: torch.ones(5, dtype=torch.bool) for k in feats}).latent
    assert not torch.allclose(a, both)  # ...and the second modality does change it when present


def test_no_modality_gives_zero_latent():
    ae = MultimodalAutoencoder(CFG).eval()
    feats, present = _inputs()
    out = ae(feats, {k: torch.zeros(5, dtype=torch.bool) for k in feats})
    assert torch.equal(out.latent, torch.zeros(5, 8))


def test_modality_dropout_keeps_one_modality():
    torch.manual_seed(0)
    ae = MultimodalAutoencoder(CFG).train()
    mask = torch.ones(1000, 2, dtype=torch.bool)
    mask[:100, 0] = False
    kept = ae.drop_modalities(mask)
    assert kept.any(1).all() and not (kept & ~mask).any()
    assert (~kept & mask).any()  # something was dropped


def test_losses_go_down():
    torch.manual_seed(0)
    cfg = AutoencoderConfig(modalities=(("audio", 6), ("image", 10)), hidden=32, latent_dim=8, dropout=0.0, modality_dropout=0.3)
    ae = MultimodalAutoencoder(cfg)
    z = torch.randn(64, 4)
    feats = {"audio": z @ torch.randn(4, 6), "image": z @ torch.randn(4, 10)}
    present = {k: torch.ones(64, dtype=torch.bool) for k in feats}
    for enc_name, enc in ae.encoders.items():
        enc.set_stats(feats[enc_name])
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        out = ae(feats, present, decode=True)
        terms = autoencoder_losses(ae, out, feats)
        loss = terms["recon"] + terms["align"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else (terms["recon"].item(), terms["align"].item())
    assert terms["recon"].item() < 0.5 * first[0]
    assert terms["align"].item() < first[1]


def test_info_nce_prefers_matching_pairs():
    a = torch.eye(8)
    assert info_nce(a, a, 0.1) < info_nce(a, a.roll(1, 0), 0.1)
