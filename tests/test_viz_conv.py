"""show_feature_maps (lesson 05, C2 and C6): every map shows its scale, the input sits beside its maps."""

import numpy as np
import pytest
import torch

from course_utils.viz.conv import _rgb, show_feature_maps


def _maps(c=5, size=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    # different ranges per map, so a shared scale and own scales differ
    return torch.randn(c, size, size, generator=g) * torch.arange(1.0, c + 1).view(c, 1, 1) + 3.0


def _map_images(fig):
    """The AxesImages of the maps, in order (titled 'map k'), and the input's axes (or None)."""
    images, inputs = [], None
    for ax in fig.axes:
        title = ax.get_title()
        if title.startswith("map ") and ax.images:
            images.append((int(title.split()[1]), ax.images[0]))
        elif title == "input":
            inputs = ax
    return [im for _, im in sorted(images, key=lambda t: t[0])], inputs


def test_shared_scale_has_one_colour_bar_spanning_all_maps():
    m = _maps()
    fig = show_feature_maps(m, image=torch.rand(3, 6, 6))
    images, _ = _map_images(fig)
    assert len(images) == 5
    bars = [im.colorbar for im in images if im.colorbar is not None]
    assert len(bars) == 1                                                  # one bar for the figure ...
    bar = bars[0]
    lo, hi = m.min().item(), m.max().item()
    assert bar.ax in fig.axes
    assert bar.ax.get_ylim() == pytest.approx((lo, hi))                    # vertical bar: data min..max
    for k, im in enumerate(images):                                        # ... whose scale every map uses
        assert im.norm is bar.norm
        np.testing.assert_allclose(im.get_array(), m[k].numpy())


def test_own_scale_gives_each_map_its_bar_with_its_min_and_max():
    m = _maps()
    fig = show_feature_maps(m, image=torch.rand(3, 6, 6), scale="own")
    images, _ = _map_images(fig)
    assert len({id(im.colorbar) for im in images}) == 5
    for k, im in enumerate(images):
        lo, hi = m[k].min().item(), m[k].max().item()
        assert (im.norm.vmin, im.norm.vmax) == pytest.approx((lo, hi))
        assert im.colorbar.ax.get_xlim() == pytest.approx((lo, hi))        # horizontal bar under the map
        assert list(im.colorbar.get_ticks()) == pytest.approx([lo, hi])
        assert [t.get_text() for t in im.colorbar.ax.get_xticklabels()] == [f"{lo:.2g}", f"{hi:.2g}"]


def test_the_input_image_is_drawn_first_and_titled():
    m = _maps(c=3)
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])
    image = torch.randn(3, 6, 6)
    for scale in ("shared", "own"):
        fig = show_feature_maps(m, image=image, mean=mean, std=std, scale=scale)
        _, inputs = _map_images(fig)
        assert inputs is fig.axes[0] and len(inputs.images) == 1
        np.testing.assert_allclose(inputs.images[0].get_array(), _rgb(image, mean, std))
        assert inputs.images[0].colorbar is None or not inputs.images[0].colorbar.ax.axison
    # without an image there is no input panel, and the first panel is map 0
    fig = show_feature_maps(m)
    assert _map_images(fig)[1] is None and fig.axes[0].get_title() == "map 0"


def test_max_maps_and_bad_arguments():
    m = _maps(c=20)
    images, _ = _map_images(show_feature_maps(m, max_maps=16))
    assert len(images) == 16
    bar = next(im.colorbar for im in images if im.colorbar is not None)
    assert bar.ax.get_ylim() == pytest.approx((m[:16].min().item(), m[:16].max().item()))  # the maps shown
    for scale in ("shared", "own"):                          # a dead (all-zero) map draws, no error
        images, _ = _map_images(show_feature_maps(torch.zeros(2, 4, 4), scale=scale))
        assert [im.get_array().max() for im in images] == [0.0, 0.0]
    with pytest.raises(ValueError, match="scale"):
        show_feature_maps(m, scale="per-map")
    with pytest.raises(ValueError, match="ONE image"):
        show_feature_maps(torch.rand(2, 3, 4, 4))


def test_names_title_the_maps_in_order_and_must_match_their_number():
    m = _maps(c=2)
    names = ["vertical edges", "horizontal edges"]
    for scale in ("shared", "own"):
        fig = show_feature_maps(m, image=torch.rand(3, 6, 6), names=names, scale=scale)
        titled = [ax for ax in fig.axes if ax.images and ax.get_title() in names]
        assert [ax.get_title() for ax in titled] == names               # in the order of the maps
        for k, ax in enumerate(titled):                                  # ... each over its own map
            np.testing.assert_allclose(ax.images[0].get_array(), m[k].numpy())
        assert not any(ax.get_title().startswith("map ") for ax in fig.axes)
    # names count the maps shown (after max_maps), not the maps passed
    fig = show_feature_maps(_maps(c=5), max_maps=3, names=["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="one name per map"):
        show_feature_maps(m, names=["only one"])
    with pytest.raises(ValueError, match="one name per map"):
        show_feature_maps(_maps(c=5), max_maps=3, names=list("abcde"))
