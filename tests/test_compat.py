import sys

import torch


def test_pytorchvideo_builds_on_current_torchvision():
    from mer._compat import import_pytorchvideo

    assert "torchvision.transforms.functional_tensor" in sys.modules  # the shim is in place
    x3d = import_pytorchvideo("pytorchvideo.models.x3d")
    net = x3d.create_x3d(input_clip_length=4, input_crop_size=64, depth_factor=1.0, model_num_class=3, head_activation=None)
    assert net(torch.zeros(1, 3, 4, 64, 64)).shape == (1, 3)
