# GDKD: PSPNet-R101-D8 teacher (MMSeg zoo) -> PSPNet-R18-D8 student on Cityscapes, the pair of the CWD
# paper and MMRazor (the GDKD paper's PSPNet student learns from DeepLabV3-R101: deeplabv3_r101_to_pspnet_r18_...).
# Only the teacher differs from deeplabv3_r101_to_pspnet_r18_cityscapes.py, which itself differs from the reference
# config only in the student: schedule, GDKD settings and auxiliary distillation are the reference's.
#   8 GPUs: tools/dist_train.sh configs/gdkd/pspnet_r101_to_r18_cityscapes.py 8
_base_ = ['./deeplabv3_r101_to_pspnet_r18_cityscapes.py']

model = dict(
    teacher='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    # the zoo weights of exactly this teacher config (mmseg/.mim/configs/pspnet/metafile.yaml)
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/'
                  'pspnet_r101-d8_512x1024_80k_cityscapes/'
                  'pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-e1e1100f.pth'))
