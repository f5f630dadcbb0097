# Open-vocabulary LVIS (the headline protocol): train on LVIS v1 train with every annotation
# of the 337 rare classes removed at load time (866 base classes), test on LVIS v1 val with
# all 1203 classes; APr (lvis/segm_APr) is the novel-class score.
_base_ = './mask-rcnn_icar-swin-b_fpn_rfs-1x_lvis-v1.py'

# The novel classes, said once: the dataset removes their annotations, and the classifier
# leaves them out of the training logits (with no box to be positive for, they would only be
# taught as negatives, and the jointly trained text tower with them).
novel_classes = 'r'
model = dict(roi_head=dict(bbox_head=dict(text_classifier=dict(novel_classes=novel_classes))))

train_dataloader = dict(dataset=dict(dataset=dict(type='OVLVISV1Dataset',
                                                  novel_classes=novel_classes)))
val_dataloader = dict(dataset=dict(type='OVLVISV1Dataset', remove_novel=False))
test_dataloader = val_dataloader
