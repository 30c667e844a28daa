# GDKD: DeepLabV3-R101-D8 teacher (MMSeg zoo) -> DeepLabV3 with a MobileNetV2-D8 backbone on Cityscapes.
# Only the student and its auxiliary distillation differ from the reference config: same teacher, schedule (40k
# iterations, 8 GPUs x 2, SGD lr 0.02, crop 512x1024) and GDKD settings, inherited so they cannot drift apart.
#   8 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py 8
_base_ = ['./deeplabv3_r101_to_r18_cityscapes.py']

# The student is MMSeg's mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py model;
# tests/configs/test_configs.py checks that it equals MMSeg's model config.
model = dict(
    student=dict(
        pretrained='mmcls://mobilenet_v2',  # ImageNet weights, as the ResNet-18 student has its own
        backbone=dict(
            _delete_=True,  # nothing of the ResNet backbone applies
            type='MobileNetV2',
            widen_factor=1.,
            strides=(1, 2, 2, 1, 1, 1, 1),
            dilations=(1, 1, 1, 2, 2, 4, 4),  # output stride 8, like the teacher's logits
            out_indices=(1, 2, 4, 6),
            norm_cfg=dict(type='SyncBN', requires_grad=True)),
        # MMSeg's MobileNetV2 config keeps the R101 head widths (512 / 256), not the R18 student's (128 / 64);
        # its stages 6 and 4 give 320 and 96 channels.
        decode_head=dict(in_channels=320, channels=512),
        auxiliary_head=dict(in_channels=96, channels=256)),
    # The authors build MobileNetV2 students without an auxiliary head (train_kd.py: aux=False), so nothing but the
    # decode logits is distilled. We keep MMSeg's auxiliary FCN head with its 0.4 cross-entropy (the student stays
    # MMSeg's model, its no-distillation baseline MMSeg's recipe; the head is dropped at inference) but, as the
    # authors, do not distil it.
    aux_distill_weight=0.0)
