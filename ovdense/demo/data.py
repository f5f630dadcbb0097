"""Deterministic synthetic "embedded default" dataset for ``make demo``.

Objects are compositional (colour x shape, e.g. ``red_circle``) so a text-generated classifier
can recognise NOVEL combinations whose words it has seen only in other base classes. Three
tasks are written under one root, in the on-disk formats the OpenMMLab loaders expect::

    lvis/annotations/lvis_v1_{train,val}.json   LVIS v1 instances (polygons of VISIBLE masks)
    lvis/{train,val}2017/<12-digit id>.jpg       images, named by ``coco_url`` like real LVIS
    ade/images/{training,validation}/*.jpg       ADE20K-style semantic segmentation,
    ade/annotations/{training,validation}/*.png  uint8 maps: 0 = background, k = class k-1
    videos/{train,val}/*.mp4                     8-frame 32x32 clips of one shape doing an action
                                                 (colour x motion, e.g. ``red_moving_left``)
    videos/{train,val}_list.txt                  mmaction2 VideoDataset lists ("path label")
    vocab_{det,seg,action}.json                  ovdense vocabulary files, in label order
    manifest.json                                version, seed, sizes, class lists

Two profiles share the generator. ``'open-vocabulary'`` (the default): novel classes (frequency
``'r'``) never occur in a training split, not even unlabelled; every colour and every shape still
occurs among base classes. ``'long-tailed'`` (BALLAD's setting, LVIS in the fine-tuned sense):
every class is seen in training, a few often and most only in a handful of images, so LVIS's
'r' (1-10 training images), 'c' (11-100) and 'f' (more) are all populated; validation is
balanced over classes. In both, the novel actions occur only in the validation clips.
Everything is derived from the seed
through per-item numpy Generators, so output bytes are identical on re-run.

Only numpy, Pillow and OpenCV are used.
"""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

__all__ = [
    'ACTION_CLASSES', 'BASE_CLASSES', 'COLOURS', 'DEFAULT_SIZES', 'DET_CLASSES',
    'GENERATOR_VERSION', 'MOTIONS', 'NOVEL_ACTIONS', 'NOVEL_CLASSES', 'PROFILES', 'SEG_CLASSES',
    'SHAPES', 'make_demo_data',
]

# Bump whenever the output for a given (seed, sizes) changes, so stale copies are rebuilt.
GENERATOR_VERSION = 3  # 2: manifest records the profile; 3: colour x motion actions
# The generator's name in manifests (its module's name before it moved to ovdense.demo):
# copies made earlier are still recognised, reused and never refused as foreign data.
GENERATOR_NAME = 'ovdense.datasets.demo_data'
SOURCE = 'ovdense demo generator'

COLOURS = {  # name -> RGB; far apart in hue so JPEG and jitter keep them distinguishable
    'red': (205, 35, 35),
    'green': (40, 165, 60),
    'blue': (40, 80, 210),
    'yellow': (235, 212, 40),
    'purple': (135, 45, 170),
    'orange': (245, 135, 25),
}
SHAPES = ('circle', 'square', 'triangle', 'star', 'cross')
SHAPE_DEFINITIONS = {
    'circle': 'a round flat shape',
    'square': 'a flat shape with four equal straight sides and four right angles',
    'triangle': 'a flat shape with three straight sides and three corners',
    'star': 'a flat shape with five pointed tips radiating from its centre',
    'cross': 'a flat shape of two equal bars crossing at right angles, like a plus sign',
}
SHAPE_SYNONYMS = {
    'circle': ('circle', 'disc', 'round shape'),
    'square': ('square', 'square tile', 'four-sided shape'),
    'triangle': ('triangle', 'three-sided shape', 'triangular shape'),
    'star': ('star', 'five-pointed star', 'star shape'),
    'cross': ('cross', 'plus sign', 'cross shape'),
}


def _class_name(colour: str, shape: str) -> str:
    return f'{colour}_{shape}'


DET_CLASSES = tuple(_class_name(c, s) for c in COLOURS for s in SHAPES)
# Latin-square diagonal: each colour loses exactly one shape, so every colour keeps 4 base
# shapes and every shape keeps at least 4 base colours.
NOVEL_CLASSES = tuple(_class_name(c, SHAPES[i % len(SHAPES)]) for i, c in enumerate(COLOURS))
BASE_CLASSES = tuple(name for name in DET_CLASSES if name not in NOVEL_CLASSES)
SEG_CLASSES = DET_CLASSES

# Actions are colour x motion, like the objects' colour x shape: a held-out action is named
# with words that base actions taught (its colour from one, its motion from another).
ACTION_COLOURS = ('red', 'green', 'blue', 'yellow')
MOTIONS = {  # motion -> (synonyms, description), each with '{}' for the coloured shape
    'moving_left': (('{} moving left', '{} sliding left'),
                    'a {} sliding steadily towards the left edge of the frame'),
    'moving_right': (('{} moving right', '{} sliding right'),
                     'a {} sliding steadily towards the right edge of the frame'),
    'moving_up': (('{} moving up', '{} rising'),
                  'a {} sliding steadily towards the top of the frame'),
    'moving_down': (('{} moving down', '{} falling'),
                    'a {} sliding steadily towards the bottom of the frame'),
    'growing': (('{} growing', '{} getting bigger'),
                'a {} staying in place while becoming larger'),
    'shrinking': (('{} shrinking', '{} getting smaller'),
                  'a {} staying in place while becoming smaller'),
}
ACTION_CLASSES = tuple(f'{colour}_{motion}' for colour in ACTION_COLOURS for motion in MOTIONS)
# A diagonal again: every motion is novel in one colour (so each motion is seen in three
# colours and each colour with four or five motions).
NOVEL_ACTIONS = tuple(f'{ACTION_COLOURS[i % len(ACTION_COLOURS)]}_{motion}'
                      for i, motion in enumerate(MOTIONS))

DEFAULT_SIZES = {
    'det_train': 600,             # images
    'det_val': 100,
    'seg_train': 300,
    'seg_val': 60,
    'video_train_per_class': 60,  # clips per base action class (novel: none)
    'video_val_per_class': 15,    # clips per action class
}

IMAGE_SIZE = 160
OBJECTS_PER_IMAGE = (2, 6)
OBJECT_DIAMETER = (18.0, 70.0)   # pixels, of the shape's circumscribed circle
MIN_VISIBLE_FRACTION = 0.6       # an occluded object keeps at least this much of its area
MIN_FRAGMENT_AREA = 25           # pixels; no tiny visible slivers that a box cannot describe
PLACEMENT_TRIES = 30
JPEG_QUALITY = 92
VIDEO_SIZE = 32   # small clips: the recognizer learns motion within make demo's budget
VIDEO_FRAMES = 8
VIDEO_FPS = 8
MOVING_RADIUS = (0.15, 0.2)      # of the frame: a sliding shape's radius
TRAVEL = (0.4, 0.5)              # how far it slides over the clip
SMALL_RADIUS, LARGE_RADIUS = (0.08, 0.12), (0.38, 0.45)  # growing / shrinking between
VAL_ID_OFFSET = 1_000_000        # LVIS train and val ids are disjoint, as in the real data
F_MIN_IMAGES = 100               # LVIS: 'f' > 100 training images, else 'c' ('r' = novel here)
R_MAX_IMAGES = 10                # LVIS: 'r' 1-10 training images (the long-tailed profile)

PROFILES = ('open-vocabulary', 'long-tailed')
# Long-tailed profile: (classes, relative sampling weight) per tier, most frequent first. At the
# default sizes (~2,200 training objects) this gives ~300 instances per 'f' class, 15-45 per 'c'
# class and 3-5 per 'r' class (plus the one image that makes every class seen).
LONG_TAIL_TIERS = ((6, (1.0, 1.0)), (12, (0.15, 0.05)), (12, (0.012, 0.012)))

# Keys mixed into every SeedSequence so tasks and splits draw independent streams.
_TASK_DET, _TASK_SEG, _TASK_VIDEO, _TASK_CLASS_WEIGHTS = 1, 2, 3, 4
_SPLITS = {'train': 0, 'val': 1}
_SUBPIXEL_BITS = 4  # cv2 drawing with fractional coordinates
_POLYGON_UPSAMPLE = 4
_POLYGON_TOLERANCE = 0.4  # pixels


# ----------------------------------------------------------------------------- public API

def make_demo_data(root: str, seed: int = 0, force: bool = False,
                   sizes: Optional[Dict[str, int]] = None,
                   profile: str = 'open-vocabulary') -> Dict[str, str]:
    """Generate (or reuse) the demo dataset under ``root`` and return its paths.

    Args:
        root: target directory. It may not exist yet; if it exists it must be empty or a
            previous output of this generator (anything else is refused, never deleted).
        seed: non-negative integer; the same seed and sizes give identical bytes.
        force: regenerate even if ``root/manifest.json`` matches.
        sizes: overrides of :data:`DEFAULT_SIZES` (image / clip counts per split).
        profile: one of :data:`PROFILES`: which classes training sees, and how often.

    Returns:
        dict of absolute paths: ``root``, ``manifest``, ``lvis_root``, ``lvis_train_ann``,
        ``lvis_val_ann``, ``ade_root``, ``video_root``, ``video_train_list``,
        ``video_val_list``, ``vocab_det``, ``vocab_seg``, ``vocab_action``.
    """
    seed = _check_seed(seed)
    sizes = _resolve_sizes(sizes)
    if profile not in PROFILES:
        raise ValueError(f'profile must be one of {PROFILES}, got {profile!r}')
    root = os.path.abspath(root)
    paths = _output_paths(root)
    if not force and _manifest_matches(root, seed, sizes, profile):
        return paths
    _refuse_foreign_directory(root)
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    # Build beside the target and rename at the end: an interrupted run never leaves a half
    # dataset where a reader would find it.
    staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(root)}.tmp-', dir=parent)
    try:
        _generate(staging, seed, sizes, profile)
        _install(staging, root, seed, sizes, profile)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


# ----------------------------------------------------------------------------- orchestration

def _generate(out: str, seed: int, sizes: Dict[str, int], profile: str) -> None:
    sampling = _ClassSampling(seed, profile)
    det_stats = _write_lvis(out, seed, sizes, sampling)
    seg_stats = _write_ade(out, seed, sizes, sampling)
    _write_videos(out, seed, sizes)
    rare = sampling.rare_meaning()
    _write_json(os.path.join(out, 'vocab_det.json'), _vocabulary(
        'ovdense_demo_det', _object_vocab_classes(det_stats),
        f'LVIS v1 json: category_id = label id + 1; frequency r = {rare}'), indent=2)
    _write_json(os.path.join(out, 'vocab_seg.json'), _vocabulary(
        'ovdense_demo_seg', _object_vocab_classes(seg_stats),
        'ADE20K-style uint8 png: 0 = background (ignored with reduce_zero_label), '
        f'value k = label id k - 1; frequency r = {rare}'), indent=2)
    _write_json(os.path.join(out, 'vocab_action.json'), _vocabulary(
        'ovdense_demo_action', _action_vocab_classes(),
        'mmaction2 VideoDataset list: "path label", label = label id'), indent=2)
    # Written last: its presence marks a complete dataset.
    _write_json(os.path.join(out, 'manifest.json'),
                _manifest(seed, sizes, sampling, det_stats, seg_stats), indent=2)


def _install(staging: str, root: str, seed: int, sizes: Dict[str, int], profile: str) -> None:
    """Move the finished staging directory to ``root``, replacing an older copy."""
    if not os.path.exists(root):
        try:
            os.rename(staging, root)
            return
        except OSError:
            # Another process installed a copy meanwhile; keep it if it is what we wanted.
            if _manifest_matches(root, seed, sizes, profile):
                return
    parent = os.path.dirname(root)
    trash = tempfile.mkdtemp(prefix=f'.{os.path.basename(root)}.old-', dir=parent)
    os.rename(root, os.path.join(trash, 'old'))
    os.rename(staging, root)
    shutil.rmtree(trash, ignore_errors=True)


def _output_paths(root: str) -> Dict[str, str]:
    join = os.path.join
    return {
        'root': root,
        'manifest': join(root, 'manifest.json'),
        'lvis_root': join(root, 'lvis'),
        'lvis_train_ann': join(root, 'lvis', 'annotations', 'lvis_v1_train.json'),
        'lvis_val_ann': join(root, 'lvis', 'annotations', 'lvis_v1_val.json'),
        'ade_root': join(root, 'ade'),
        'video_root': join(root, 'videos'),
        'video_train_list': join(root, 'videos', 'train_list.txt'),
        'video_val_list': join(root, 'videos', 'val_list.txt'),
        'vocab_det': join(root, 'vocab_det.json'),
        'vocab_seg': join(root, 'vocab_seg.json'),
        'vocab_action': join(root, 'vocab_action.json'),
    }


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    return int(seed)


def _resolve_sizes(sizes: Optional[Dict[str, int]]) -> Dict[str, int]:
    resolved = dict(DEFAULT_SIZES)
    unknown = set(sizes or {}) - set(DEFAULT_SIZES)
    if unknown:
        raise ValueError(f'unknown size keys {sorted(unknown)}; valid: {sorted(DEFAULT_SIZES)}')
    for key, value in (sizes or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f'sizes[{key!r}] must be a positive integer, got {value!r}')
        resolved[key] = int(value)
    return resolved


def _read_manifest(root: str) -> Optional[dict]:
    try:
        with open(os.path.join(root, 'manifest.json'), encoding='utf-8') as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _manifest_matches(root: str, seed: int, sizes: Dict[str, int], profile: str) -> bool:
    manifest = _read_manifest(root)
    return (manifest is not None and manifest.get('generator') == GENERATOR_NAME
            and manifest.get('version') == GENERATOR_VERSION
            and manifest.get('seed') == seed and manifest.get('sizes') == sizes
            and manifest.get('profile') == profile)


def _refuse_foreign_directory(root: str) -> None:
    """Only an empty directory or an earlier demo dataset may be replaced."""
    if not os.path.lexists(root):
        return
    if not os.path.isdir(root) or os.path.islink(root):
        raise FileExistsError(f'{root!r} exists and is not a directory; '
                              'choose another output path for the demo data')
    manifest = _read_manifest(root)
    if os.listdir(root) and (manifest is None or manifest.get('generator') != GENERATOR_NAME):
        raise FileExistsError(f'{root!r} is not empty and was not made by the demo generator '
                              '(no matching manifest.json); refusing to overwrite it')


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


# ----------------------------------------------------------------------------- class metadata

def _colour_and_shape(name: str):
    colour, shape = name.split('_')
    return colour, shape


def _class_definition(name: str) -> str:
    colour, shape = _colour_and_shape(name)
    return f'{SHAPE_DEFINITIONS[shape]} coloured {colour}'


def _class_synonyms(name: str) -> List[str]:
    colour, shape = _colour_and_shape(name)
    return [f'{colour} {word}' for word in SHAPE_SYNONYMS[shape]]


class _ClassSampling:
    """Which classes each split draws, how often, and what LVIS frequency a class gets.

    Open-vocabulary: training draws base classes only, with a mild seed-shuffled tail (so base
    classes split into 'c' and 'f'); validation draws every class, novel ones twice as likely.
    Long-tailed: training draws every class with the weights of LONG_TAIL_TIERS (tiers assigned
    to classes in a seed-dependent order); validation draws every class equally.
    """

    def __init__(self, seed: int, profile: str):
        self.profile = profile
        order = _rng(seed, _TASK_CLASS_WEIGHTS)
        if profile == 'open-vocabulary':
            weights = np.linspace(1.6, 0.6, len(BASE_CLASSES))
            order.shuffle(weights)
            self.train_names = list(BASE_CLASSES)
        else:
            weights = np.concatenate([np.geomspace(high, low, count)
                                      for count, (high, low) in LONG_TAIL_TIERS])
            order.shuffle(weights)
            self.train_names = list(DET_CLASSES)
        self.train_weights = weights / weights.sum()

    def split(self, split: str):
        """(classes, weights, first_object(image index) -> class name or None)."""
        if split == 'train':
            names, weights = self.train_names, self.train_weights
            if self.profile == 'open-vocabulary':
                # The first object cycles through the classes: coverage even for tiny splits.
                return names, weights, lambda index: names[index % len(names)]
            # Rarest first, once each: every class is seen, and the tail stays a tail.
            once = [names[i] for i in np.argsort(weights, kind='stable')]
            return names, weights, lambda index: once[index] if index < len(once) else None
        names = list(DET_CLASSES)
        if self.profile == 'open-vocabulary':
            weights = np.array([2.0 if name in NOVEL_CLASSES else 1.0 for name in names])
            order = list(NOVEL_CLASSES) + list(BASE_CLASSES)
        else:
            weights, order = np.ones(len(names)), names
        return names, weights / weights.sum(), lambda index: order[index % len(order)]

    def frequency(self, name: str, train_image_count: int) -> str:
        if self.profile == 'open-vocabulary' and name in NOVEL_CLASSES:
            return 'r'  # never in training: the open-vocabulary split's novel classes
        if self.profile == 'long-tailed' and train_image_count <= R_MAX_IMAGES:
            return 'r'
        return 'f' if train_image_count > F_MIN_IMAGES else 'c'

    def rare_meaning(self) -> str:
        if self.profile == 'open-vocabulary':
            return 'novel (no training annotations)'
        return f'1-{R_MAX_IMAGES} training images'

    @property
    def novel_classes(self) -> List[str]:
        return list(NOVEL_CLASSES) if self.profile == 'open-vocabulary' else []


# ----------------------------------------------------------------------------- drawing

def _unit_outline(shape: str) -> np.ndarray:
    """Polygon vertices of a shape inscribed in the unit circle, pointing up."""
    if shape == 'square':
        angles = np.pi / 4 + np.arange(4) * np.pi / 2
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == 'triangle':
        angles = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == 'star':
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    if shape == 'cross':
        a = 0.33  # half the bar width
        points = np.array([(a, 1), (a, a), (1, a), (1, -a), (a, -a), (a, -1), (-a, -1),
                           (-a, -a), (-1, -a), (-1, a), (-a, a), (-a, 1)], dtype=float)
        return points / np.hypot(1, a)
    raise ValueError(f'no outline for shape {shape!r}')


_UNIT_OUTLINES = {shape: _unit_outline(shape) for shape in SHAPES if shape != 'circle'}


def _shape_mask(shape: str, centre, radius: float, angle: float, size: int) -> np.ndarray:
    """Boolean mask of a filled shape; drawn without anti-aliasing so the mask is exact."""
    mask = np.zeros((size, size), np.uint8)
    scale = 1 << _SUBPIXEL_BITS
    if shape == 'circle':
        cv2.circle(mask, (int(round(centre[0] * scale)), int(round(centre[1] * scale))),
                   int(round(radius * scale)), 1, thickness=-1, lineType=cv2.LINE_8,
                   shift=_SUBPIXEL_BITS)
    else:
        cos, sin = np.cos(angle), np.sin(angle)
        outline = _UNIT_OUTLINES[shape] @ np.array([[cos, sin], [-sin, cos]])
        points = np.round((outline * radius + np.asarray(centre)) * scale).astype(np.int32)
        cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return mask.astype(bool)


def _background(rng: np.random.Generator, size: int, clutter: int = 4) -> np.ndarray:
    """Low-saturation textured background (float32 HxWx3) with a few grey line distractors,
    so the model must find objects by colour and shape rather than by any non-flat pixel."""
    grey = rng.uniform(70, 190)
    tint = rng.uniform(-14, 14, 3)
    cells = int(rng.integers(3, 9))
    blotches = rng.normal(0, 20, (cells, cells, 1)) + rng.normal(0, 5, (cells, cells, 3))
    smooth = cv2.resize(blotches.astype(np.float32), (size, size),
                        interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((size, size, 3), dtype=np.float32) * 6
    image = (smooth + grain + (grey + tint).astype(np.float32)).astype(np.float32)
    for _ in range(int(rng.integers(0, clutter + 1))):
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        level = float(np.clip(grey + rng.choice([-1, 1]) * rng.uniform(25, 55), 0, 255))
        cv2.line(image, p1, p2, (level, level, level), int(rng.integers(1, 4)), cv2.LINE_AA)
    return image


def _paint(image: np.ndarray, mask: np.ndarray, rgb, rng: np.random.Generator) -> None:
    """Fill ``mask`` with a jittered, gently shaded, noisy version of ``rgb``."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return
    base = (np.asarray(rgb, float) + rng.uniform(-12, 12, 3)) * rng.uniform(0.86, 1.06)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    extent = max(float(np.ptp(xs)), float(np.ptp(ys)), 1.0)
    ramp = ((xs - xs.mean()) * direction[0] + (ys - ys.mean()) * direction[1]) / extent
    shade = ramp * rng.uniform(0, 30)
    noise = rng.normal(0, 5, (len(xs), 3))
    image[ys, xs] = np.clip(base + shade[:, None] + noise, 0, 255)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- scenes

@dataclass
class _PlacedObject:
    name: str
    full: np.ndarray     # mask as drawn
    visible: np.ndarray  # what later objects leave uncovered


def _is_clean_region(mask: np.ndarray) -> bool:
    """No holes (a COCO polygon cannot express them) and no tiny fragments."""
    region = mask.astype(np.uint8)
    _, hierarchy = cv2.findContours(region, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is not None and (hierarchy[0][:, 3] >= 0).any():
        return False
    _, _, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    return bool(len(stats) > 1 and stats[1:, cv2.CC_STAT_AREA].min() >= MIN_FRAGMENT_AREA)


def _occlusion_ok(mask: np.ndarray, colour: str, placed: Sequence[_PlacedObject]) -> bool:
    """Would drawing ``mask`` on top keep every earlier object well visible and clean?"""
    for obj in placed:
        if not (obj.visible & mask).any():
            continue
        if _colour_and_shape(obj.name)[0] == colour:
            return False  # same-colour overlaps would have no visible instance boundary
        remaining = obj.visible & ~mask
        if remaining.sum() < MIN_VISIBLE_FRACTION * obj.full.sum():
            return False
        if not _is_clean_region(remaining):
            return False
    return True


def _place_object(rng: np.random.Generator, name: str, placed: Sequence[_PlacedObject],
                  size: int) -> Optional[np.ndarray]:
    colour, shape = _colour_and_shape(name)
    for _ in range(PLACEMENT_TRIES):
        radius = rng.uniform(*OBJECT_DIAMETER) / 2
        centre = rng.uniform(radius, size - 1 - radius, 2)
        mask = _shape_mask(shape, centre, radius, rng.uniform(0, 2 * np.pi), size)
        if _is_clean_region(mask) and _occlusion_ok(mask, colour, placed):
            return mask
    return None  # crowded image: skip the object rather than hide another one


def _render_scene(rng: np.random.Generator, names: Sequence[str], weights: np.ndarray,
                  first: Optional[str], size: int = IMAGE_SIZE):
    """Draw 2-6 objects back to front, the first one of class ``first`` unless it is None;
    return (uint8 RGB image, placed objects)."""
    image = _background(rng, size)
    placed: List[_PlacedObject] = []
    count = int(rng.integers(OBJECTS_PER_IMAGE[0], OBJECTS_PER_IMAGE[1] + 1))
    for k in range(count):
        if k == 0 and first is not None:
            name = first
        else:
            name = names[int(rng.choice(len(names), p=weights))]
        mask = _place_object(rng, name, placed, size)
        if mask is None:
            continue
        for obj in placed:
            obj.visible &= ~mask  # later objects occlude earlier ones
        placed.append(_PlacedObject(name, mask, mask.copy()))
        _paint(image, mask, COLOURS[_colour_and_shape(name)[0]], rng)
    return _to_uint8(image), placed


def _save_jpeg(path: str, image: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Fixed quality and 4:4:4 chroma (no colour bleeding on small objects); deterministic.
    Image.fromarray(image).save(path, format='JPEG', quality=JPEG_QUALITY, subsampling=0)


# ----------------------------------------------------------------------------- LVIS (detection)

def _mask_polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons (flat x,y lists) that rasterise back to exactly ``mask``.

    pycocotools (used by mmdet's poly2mask and by LVIS evaluation) fills a pixel when the
    polygon covers its centre. Contours traced on pixel centres would lose half a pixel all
    round (IoU ~0.9 on small objects), so trace a 4x upsampled crop instead: vertices then
    sit 1/8 px inside the true pixel edges, and a 0.4 px simplification keeps them there.
    """
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    up = _POLYGON_UPSAMPLE
    crop = mask[y0:ys.max() + 1, x0:xs.max() + 1].astype(np.uint8)
    big = np.pad(crop.repeat(up, axis=0).repeat(up, axis=1), 1)  # 1 px margin for tracing
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        contour = cv2.approxPolyDP(contour, _POLYGON_TOLERANCE * up, True)
        points = (contour.reshape(-1, 2) - 1 + 0.5) / up + (x0, y0)
        if len(points) >= 3:
            polygons.append(points.ravel().tolist())
    return polygons


def _mask_annotation(mask: np.ndarray) -> Optional[dict]:
    ys, xs = np.nonzero(mask)
    polygons = _mask_polygons(mask) if len(xs) else []
    if not polygons:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    w, h = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
    return {'bbox': [float(x0), float(y0), float(w), float(h)],
            'segmentation': polygons, 'area': float(len(xs))}


def _lvis_image_record(image_id: int, split: str, present_ids: set) -> dict:
    all_ids = range(1, len(DET_CLASSES) + 1)
    return {
        'id': image_id,
        'width': IMAGE_SIZE,
        'height': IMAGE_SIZE,
        # mmdet's LVISV1Dataset strips 'http://images.cocodataset.org/' to get file_name.
        'coco_url': f'http://images.cocodataset.org/{split}2017/{image_id:012d}.jpg',
        'flickr_url': '',
        'license': 1,
        # Annotations are exhaustive: every absent category is a verified negative.
        'neg_category_ids': [cid for cid in all_ids if cid not in present_ids],
        'not_exhaustive_category_ids': [],
    }


def _lvis_split(out: str, seed: int, split: str, count: int, sampling: _ClassSampling):
    """Render one split; return (images, annotations) records."""
    names, weights, first_object = sampling.split(split)
    id_offset = 0 if split == 'train' else VAL_ID_OFFSET
    images, annotations = [], []
    for index in range(count):
        rng = _rng(seed, _TASK_DET, _SPLITS[split], index)
        image_id = id_offset + index + 1
        image, placed = _render_scene(rng, names, weights, first_object(index))
        _save_jpeg(os.path.join(out, 'lvis', f'{split}2017', f'{image_id:012d}.jpg'), image)
        present = set()
        for obj in placed:
            record = _mask_annotation(obj.visible)
            if record is None:
                continue
            category_id = DET_CLASSES.index(obj.name) + 1
            present.add(category_id)
            annotations.append({'id': id_offset + len(annotations) + 1, 'image_id': image_id,
                                'category_id': category_id, **record})
        images.append(_lvis_image_record(image_id, split, present))
    return images, annotations


def _class_counts(annotations: Sequence[dict], label_key: str = 'category_id'):
    """Per category id: (number of images, number of instances)."""
    images: Dict[int, set] = {}
    instances: Dict[int, int] = {}
    for ann in annotations:
        images.setdefault(ann[label_key], set()).add(ann['image_id'])
        instances[ann[label_key]] = instances.get(ann[label_key], 0) + 1
    return {cid: len(ids) for cid, ids in images.items()}, instances


def _lvis_categories(train_annotations: Sequence[dict], sampling: _ClassSampling) -> List[dict]:
    image_count, instance_count = _class_counts(train_annotations)
    categories = []
    for category_id, name in enumerate(DET_CLASSES, start=1):
        images = image_count.get(category_id, 0)
        categories.append({
            'id': category_id, 'name': name, 'synonyms': _class_synonyms(name),
            'def': _class_definition(name), 'synset': f'{name}.n.01',
            'frequency': sampling.frequency(name, images), 'image_count': images,
            'instance_count': instance_count.get(category_id, 0),
        })
    return categories


def _write_lvis(out: str, seed: int, sizes: Dict[str, int], sampling: _ClassSampling) -> dict:
    splits = {split: _lvis_split(out, seed, split, sizes[f'det_{split}'], sampling)
              for split in ('train', 'val')}
    categories = _lvis_categories(splits['train'][1], sampling)
    for split, (images, annotations) in splits.items():
        _write_json(os.path.join(out, 'lvis', 'annotations', f'lvis_v1_{split}.json'), {
            'info': {'description': f'{SOURCE}: synthetic colour x shape objects, {split}',
                     'version': str(GENERATOR_VERSION)},
            'licenses': [{'id': 1, 'name': 'synthetic, public domain', 'url': ''}],
            'images': images, 'annotations': annotations, 'categories': categories})
    return {'classes': categories,
            'train_instances': len(splits['train'][1]),
            'val_instances': len(splits['val'][1])}


# ----------------------------------------------------------------------------- ADE (segmentation)

def _label_map(placed: Sequence[_PlacedObject], size: int) -> np.ndarray:
    """ADE convention: 0 = background ('other', ignored with reduce_zero_label), k = class k-1."""
    labels = np.zeros((size, size), np.uint8)
    for obj in placed:
        labels[obj.visible] = SEG_CLASSES.index(obj.name) + 1
    return labels


def _ade_split(out: str, seed: int, split: str, count: int, sampling: _ClassSampling):
    """Render one split; return pseudo-annotations (label, image index) for class statistics."""
    names, weights, first_object = sampling.split(split)
    folder = 'training' if split == 'train' else 'validation'
    present = []
    for index in range(count):
        rng = _rng(seed, _TASK_SEG, _SPLITS[split], index)
        image, placed = _render_scene(rng, names, weights, first_object(index))
        stem = f'ADE_{split}_{index + 1:08d}'
        _save_jpeg(os.path.join(out, 'ade', 'images', folder, stem + '.jpg'), image)
        label_path = os.path.join(out, 'ade', 'annotations', folder, stem + '.png')
        os.makedirs(os.path.dirname(label_path), exist_ok=True)
        Image.fromarray(_label_map(placed, IMAGE_SIZE)).save(label_path, format='PNG')
        present += [{'label': SEG_CLASSES.index(obj.name) + 1, 'image_id': index}
                    for obj in placed]
    return present


def _write_ade(out: str, seed: int, sizes: Dict[str, int], sampling: _ClassSampling) -> dict:
    train = _ade_split(out, seed, 'train', sizes['seg_train'], sampling)
    _ade_split(out, seed, 'val', sizes['seg_val'], sampling)
    image_count, _ = _class_counts(train, label_key='label')
    classes = [{'id': label, 'name': name, 'synonyms': _class_synonyms(name),
                'def': _class_definition(name),
                'frequency': sampling.frequency(name, image_count.get(label, 0)),
                'image_count': image_count.get(label, 0)}
               for label, name in enumerate(SEG_CLASSES, start=1)]
    return {'classes': classes}


# ----------------------------------------------------------------------------- videos (actions)

def _clip_trajectory(rng: np.random.Generator, motion: str):
    """Per-frame (centre x, centre y, radius, angle) arrays for one motion (lengths in
    fractions of the frame, so the clip size can change without changing the motion)."""
    t = np.linspace(0.0, 1.0, VIDEO_FRAMES)
    size = VIDEO_SIZE
    angle = np.full_like(t, rng.uniform(0, 2 * np.pi))
    if motion.startswith('moving_'):
        radius = np.full_like(t, rng.uniform(*MOVING_RADIUS) * size)
        travel = rng.uniform(*TRAVEL) * size
        along = rng.uniform(radius[0] + travel / 2, size - 1 - radius[0] - travel / 2)
        across = np.full_like(t, rng.uniform(radius[0] + 1, size - 2 - radius[0]))
        sign = -1.0 if motion in ('moving_left', 'moving_up') else 1.0
        moving = along + sign * travel * (t - 0.5)
        x, y = (moving, across) if motion in ('moving_left', 'moving_right') else (across, moving)
        return x, y, radius, angle
    centre = rng.uniform(size * 0.4, size * 0.6, 2)
    x, y = np.full_like(t, centre[0]), np.full_like(t, centre[1])
    small, large = rng.uniform(*SMALL_RADIUS) * size, rng.uniform(*LARGE_RADIUS) * size
    radius = small + (large - small) * (t if motion == 'growing' else 1 - t)
    return x, y, radius, angle


def _render_clip(rng: np.random.Generator, action: str) -> List[np.ndarray]:
    """Frames (uint8 RGB) of one shape of the action's colour doing the action's motion."""
    colour, motion = action.split('_', 1)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    background = _background(rng, VIDEO_SIZE, clutter=0)
    paint_seed = int(rng.integers(2**31))
    frames = []
    for x, y, radius, angle in zip(*_clip_trajectory(rng, motion)):
        frame = background + rng.standard_normal(background.shape, dtype=np.float32) * 2
        mask = _shape_mask(shape, (x, y), radius, angle, VIDEO_SIZE)
        # Same colour jitter in every frame: one object, not a flickering one.
        _paint(frame, mask, COLOURS[colour], np.random.default_rng(paint_seed))
        frames.append(_to_uint8(frame))
    return frames


def _write_clip(path: str, frames: Sequence[np.ndarray]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), VIDEO_FPS,
                             (VIDEO_SIZE, VIDEO_SIZE))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write mp4v videos here (writing {path!r}); '
                           'install an opencv-python wheel with FFmpeg support')
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def _count_frames(path: str) -> int:
    capture = cv2.VideoCapture(path)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def _write_videos(out: str, seed: int, sizes: Dict[str, int]) -> None:
    for split in ('train', 'val'):
        # training never shows a novel action; validation shows every action
        labels = [label for label, name in enumerate(ACTION_CLASSES)
                  if split == 'val' or name not in NOVEL_ACTIONS]
        lines = []
        for index in range(sizes[f'video_{split}_per_class'] * len(labels)):
            label = labels[index % len(labels)]
            relative = f'{split}/clip_{index:05d}.mp4'
            path = os.path.join(out, 'videos', relative)
            _write_clip(path, _render_clip(_rng(seed, _TASK_VIDEO, _SPLITS[split], index),
                                           ACTION_CLASSES[label]))
            if index == 0 and _count_frames(path) != VIDEO_FRAMES:  # fail early, not in mmaction
                raise RuntimeError(f'{path!r} does not read back with {VIDEO_FRAMES} frames; '
                                   'this OpenCV build cannot round-trip mp4v videos')
            lines.append(f'{relative} {label}\n')
        with open(os.path.join(out, 'videos', f'{split}_list.txt'), 'w',
                  encoding='utf-8') as f:
            f.writelines(lines)


# ----------------------------------------------------------------------------- vocabularies

def _object_vocab_classes(stats: dict) -> List[dict]:
    return [{'name': c['name'], 'synonyms': c['synonyms'], 'description': c['def'],
             'frequency': c['frequency']} for c in stats['classes']]


def _action_vocab_classes() -> List[dict]:
    classes = []
    for colour in ACTION_COLOURS:
        for motion, (synonyms, description) in MOTIONS.items():
            name = f'{colour}_{motion}'
            thing = f'{colour} shape'
            classes.append({'name': name, 'synonyms': [s.format(thing) for s in synonyms],
                            'description': description.format(thing),
                            'split': 'novel' if name in NOVEL_ACTIONS else 'base'})
    return classes


def _vocabulary(name: str, classes: List[dict], label_convention: str) -> dict:
    return {'name': name, 'source': SOURCE, 'label_convention': label_convention,
            'classes': classes}


def _manifest(seed: int, sizes: Dict[str, int], sampling: _ClassSampling, det_stats: dict,
              seg_stats: dict) -> dict:
    """Everything needed to decide reuse and to configure the demo; no timestamps or
    absolute paths, so the file is byte-identical across runs and locations."""
    return {
        'generator': GENERATOR_NAME,
        'version': GENERATOR_VERSION,
        'seed': seed,
        'sizes': sizes,
        'profile': sampling.profile,
        'image_size': IMAGE_SIZE,
        'video': {'size': VIDEO_SIZE, 'frames': VIDEO_FRAMES, 'fps': VIDEO_FPS},
        'colours': list(COLOURS),
        'shapes': list(SHAPES),
        'det': {'classes': list(DET_CLASSES), 'novel_classes': sampling.novel_classes,
                'base_classes': [n for n in DET_CLASSES if n not in sampling.novel_classes],
                'frequency': {c['name']: c['frequency'] for c in det_stats['classes']},
                'train_instances': det_stats['train_instances'],
                'val_instances': det_stats['val_instances'],
                'train_ann': 'lvis/annotations/lvis_v1_train.json',
                'val_ann': 'lvis/annotations/lvis_v1_val.json', 'vocab': 'vocab_det.json'},
        'seg': {'classes': list(SEG_CLASSES), 'novel_classes': sampling.novel_classes,
                'reduce_zero_label': True, 'img_suffix': '.jpg', 'seg_map_suffix': '.png',
                'frequency': {c['name']: c['frequency'] for c in seg_stats['classes']},
                'root': 'ade', 'vocab': 'vocab_seg.json'},
        'action': {'classes': list(ACTION_CLASSES), 'novel_classes': list(NOVEL_ACTIONS),
                   'root': 'videos',
                   'train_list': 'videos/train_list.txt', 'val_list': 'videos/val_list.txt',
                   'vocab': 'vocab_action.json'},
    }


def _write_json(path: str, obj, indent: Optional[int] = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # json.dumps (unlike json.dump) uses the C encoder: the LVIS files hold ~10^5 numbers.
    with open(path, 'w', encoding='utf-8') as f:
        f.write(json.dumps(obj, indent=indent, ensure_ascii=False) + '\n')
