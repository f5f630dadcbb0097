# Open-vocabulary Kinetics-400: the iCAR Video Swin-B recipe trained on the 200 base classes
# (even label ids of label_map_k400.txt) and tested on all 400 classes. The split is said once,
# as for detection and segmentation: the text classifier leaves the 200 novel classes out of
# the training logits, the training data drops their clips (labels keep indexing all 400), and
# validation / test score all 400 names with no weight changes: the novel actions are
# recognised from their names alone.
# Reported (OpenVocabAccMetric): acc/top1, acc/top5, acc/mean1 over all 400 classes, and
# acc/base_top1, acc/novel_top1 (clips of base / novel classes, predicted among all 400) with
# their harmonic mean acc/harmonic_top1.
#   python tools/train.py THIS_CONFIG
#   python tools/test.py THIS_CONFIG work_dirs/<this config>/epoch_30.pth
# Another split: change novel_classes (label ids and/or names of kinetics_400).
_base_ = './video-swin-b_icar_p244-w877_32x2x1-30e_kinetics400-rgb.py'

novel_classes = list(range(1, 400, 2))  # label ids in the kinetics_400 vocabulary; even = base

model = dict(cls_head=dict(text_classifier=dict(novel_classes=novel_classes)))
train_dataloader = dict(dataset=dict(novel_classes=novel_classes))  # base clips only
val_evaluator = dict(_delete_=True, type='OpenVocabAccMetric', vocabulary=_base_.vocabulary,
                     novel_classes=novel_classes)
test_evaluator = val_evaluator
