+ img2maya 0.1.0 .
MAYA_SHELF_PATH +:= shelves
IMG2MAYA_ROOT :=
