"""Checks shared by ovdense's datasets: bad annotation files and unreadable images are named."""
from typing import Collection


class NamedSampleErrors:
    """Dataset mixin: an error while preparing a sample (an image that does not decode, an
    empty file) keeps its type, so the dataset's convention is unchanged (mmcv's
    ``LoadImageFromFile`` fails, or with ``ignore_empty=True`` returns None and the dataset
    draws another sample), but gains a note naming the sample's files. mmcv names an image
    that decodes to nothing, but not an empty file (OpenCV's ``!buf.empty()`` assertion)."""

    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except Exception as err:
            if hasattr(err, 'add_note'):  # Python >= 3.11; older versions: unchanged
                info = self.get_data_info(idx)
                files = [str(info[k]) for k in ('img_path', 'seg_map_path') if info.get(k)]
                err.add_note(f'while loading sample {idx} of {type(self).__name__}: '
                             f'{", ".join(files) or "(no file path)"}')
            raise


def check_annotation_categories(ann_file, raw_data_info: dict,
                                category_ids: Collection[int]) -> None:
    """COCO / LVIS: every annotation's ``category_id`` must be one of the file's categories
    (mmdet skips unknown ids silently: the objects would vanish from training and evaluation
    without a word)."""
    from ..utils.io import OvdenseFileError
    unknown = [ann for ann in raw_data_info['raw_ann_info']
               if ann['category_id'] not in category_ids]
    if unknown:
        image = raw_data_info['raw_img_info']
        first = unknown[0]
        raise OvdenseFileError(
            f'{str(ann_file)!r}: annotation {first.get("id")!r} of image '
            f'{image.get("img_id", image.get("id"))!r} has category_id '
            f'{first["category_id"]!r}, which is not among the file\'s {len(category_ids)} '
            f'categories ({len(unknown)} such annotation(s) in this image)')
