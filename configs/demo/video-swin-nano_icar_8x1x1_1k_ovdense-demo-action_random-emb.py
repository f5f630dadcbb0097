# Control for the action demo: the same recognizer with fixed random class embeddings
# (seeded by class name) instead of the text tower. Base actions can still be learnt (the
# projection adapts to the random targets); novel actions cannot.
_base_ = './video-swin-nano_icar_8x1x1_1k_ovdense-demo-action.py'

model = dict(cls_head=dict(text_classifier=dict(train_text_tower=False,
                                                random_embeddings=True)))
