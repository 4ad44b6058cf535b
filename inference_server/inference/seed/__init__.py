"""The prototype's own networks, re-implemented to load their original checkpoints unchanged.

* ``deeplab_v2.DeepLabV2(weights_path, device=None).predict(rgb) -> Segmentation``: DeepLab v2 ResNet-101
  MSC on COCO-Stuff 164k (PyTorch), from kazuto1011/deeplab-pytorch's ``.pth``.
* ``monodepth.Monodepth(checkpoint_prefix, dataset="cityscapes").predict(rgb) -> DepthMap``: Monodepth VGG
  (TensorFlow 2), from mrharicot/monodepth's TF1 checkpoints ``model_cityscapes`` / ``model_kitti``.

Importing this package (or its modules) imports neither torch nor tensorflow; they load on first use.
"""
