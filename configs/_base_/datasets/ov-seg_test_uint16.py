# ov-seg_test.py for 16-bit label maps (class ids above 255, 65535 = ignore): its pipelines
# with mmseg's LoadAnnotations, which casts to uint8, swapped for LoadUInt16SegAnnotations.
_base_ = './ov-seg_test.py'


def _uint16_labels(step):
    if isinstance(step, list):
        return [_uint16_labels(s) for s in step]
    if step.get('type') == 'LoadAnnotations':
        return dict(type='LoadUInt16SegAnnotations')
    if 'transforms' in step:
        return dict(step, transforms=_uint16_labels(step['transforms']))
    return step


test_pipeline = _uint16_labels(_base_.test_pipeline)
tta_pipeline = _uint16_labels(_base_.tta_pipeline)
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(ignore_index=65535)
val_evaluator = test_evaluator
