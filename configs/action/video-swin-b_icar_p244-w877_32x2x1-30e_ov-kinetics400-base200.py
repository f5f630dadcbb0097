# Open-vocabulary Kinetics-400: the iCAR Video Swin-B recipe trained on the 200 base classes
# (even label ids of label_map_k400.txt) and tested on all 400 classes. The text classifier
# scores only the base classes while training and all 400 names at validation / test, with no
# weight changes: the 200 novel actions are recognised from their names alone.
# Reported (OpenVocabAccMetric): acc/top1, acc/top5, acc/mean1 over all 400 classes, and
# acc/base_top1, acc/novel_top1 (clips of base / novel classes, predicted among all 400) with
# their harmonic mean acc/harmonic_top1.
#   python tools/train.py THIS_CONFIG
#   python tools/test.py THIS_CONFIG work_dirs/<this config>/epoch_30.pth
# Another split: change base_classes (label ids or names of kinetics_400).
_base_ = './video-swin-b_icar_p244-w877_32x2x1-30e_kinetics400-rgb.py'

base_classes = list(range(0, 400, 2))  # label ids in the kinetics_400 vocabulary; odd = novel

model = dict(cls_head=dict(train_classes=base_classes))
train_dataloader = dict(dataset=dict(classes=base_classes))  # base clips, labels 0..199
val_evaluator = dict(_delete_=True, type='OpenVocabAccMetric', vocabulary='kinetics_400',
                     base_classes=base_classes)
test_evaluator = val_evaluator
