# mmseg's runtime plus the class check every ovdense segmentation config needs (model and
# data must have the same class list; ground-truth values must be class ids or ignored).
_base_ = 'mmseg::_base_/default_runtime.py'

custom_hooks = [dict(type='SegVocabularyCheckHook')]
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
