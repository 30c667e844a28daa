# GDKD across architectures: DeepLabV3-R101-D8 teacher (MMSeg zoo) -> PSPNet-R18-D8 student on Cityscapes,
# the paper's PSPNet pair (seg-gdkd train_scripts/train_kd/pspnet_res18.sh; DIST's and CIRKD's too).
# Only the student differs from the reference config: same teacher, schedule (40k iterations, 8 GPUs x 2, SGD lr 0.02,
# crop 512x1024), GDKD settings and auxiliary distillation (0.4; the teacher's FCN head teaches the student's),
# inherited so they cannot drift apart.
#   8 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py 8
_base_ = ['./deeplabv3_r101_to_r18_cityscapes.py']

# The student is MMSeg's pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py model: the reference student's ResNet-18
# backbone, ImageNet weights and auxiliary head, with MMSeg's PSP head at the R18 widths in place of the ASPP head.
# tests/configs/test_configs.py checks that it equals MMSeg's model config.
model = dict(
    student=dict(
        decode_head=dict(
            _delete_=True,  # ASPPHead's `dilations` is no PSPHead argument
            type='PSPHead',
            in_channels=512,
            in_index=3,
            channels=128,
            pool_scales=(1, 2, 3, 6),
            dropout_ratio=0.1,
            num_classes=19,
            norm_cfg=dict(type='SyncBN', requires_grad=True),
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))))
