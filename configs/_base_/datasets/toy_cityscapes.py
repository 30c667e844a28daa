# The embedded toy city (tools/dataset_converters/make_toy_cityscapes.py) in Cityscapes layout, at CPU-demo scale.
# Only toy_* names, so it can sit beside any Cityscapes config in `_base_`; leaf configs take the pieces with
# `train_dataloader = {{_base_.toy_train_dataloader}}` etc.
toy_data_root = 'data/toy_cityscapes'
toy_image_size = (256, 128)  # (w, h) as MMCV's Resize takes it
# Training crops of half an image: half the pixels per step for the same batch, so twice the steps in the demo's
# minutes; evaluation sees whole images.
toy_crop_size = (128, 128)  # (h, w)
# Class-weighted cross-entropy for every toy-city model (merged into each head's loss_decode, keeping its
# loss_weight; ClassWeightedCrossEntropyLoss because MMSeg's CrossEntropyLoss fails on ignored pixels when given
# class weights). w_c = sqrt(median share / share of class c), scaled so that the mean weight per labelled pixel is
# 1, from the class pixel shares of the default toy city (seed 0) that tools/dataset_converters/make_toy_cityscapes.py
# prints. The square root lifts the rare thin classes (traffic light, motorcycle, bicycle) without letting them swamp
# road and building, which a short schedule from scratch otherwise learns first and alone.
toy_class_weight = [
    0.6, 1.02, 0.6, 2.27, 2.81, 1.53, 3.25, 2.26, 0.84, 1.81, 0.97, 2.57, 2.65, 0.74, 1.95, 1.84, 2.37, 3.75, 5.73
]
toy_ce_loss = dict(type='ClassWeightedCrossEntropyLoss', class_weight=toy_class_weight)
toy_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=toy_image_size, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=toy_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
toy_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=toy_image_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
toy_train_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CityscapesDataset',
        data_root=toy_data_root,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=toy_train_pipeline))
toy_val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CityscapesDataset',
        data_root=toy_data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=toy_test_pipeline))
