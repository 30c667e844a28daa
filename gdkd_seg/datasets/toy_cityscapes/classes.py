"""The 19 Cityscapes evaluation classes the toy city labels, and their colours."""
from typing import Tuple

CITYSCAPES_CLASSES: Tuple[str, ...] = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                                       'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
                                       'truck', 'bus', 'train', 'motorcycle', 'bicycle')
"""The 19 Cityscapes evaluation classes, indexed by train ID (the order MMSeg's ``CityscapesDataset`` uses)."""

CITYSCAPES_PALETTE: Tuple[Tuple[int, int, int],
                          ...] = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
                                  (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
                                  (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
                                  (0, 80, 100), (0, 0, 230), (119, 11, 32))
"""The official Cityscapes colour (RGB) of each train ID, for visualising label maps."""

IGNORE_INDEX = 255
"""Label value of pixels that belong to no evaluated class (Cityscapes' void classes)."""

(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, RIDER, CAR,
 TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
