"""Output videos rendered from the user's own input (PyAV): the first frame is their image.

picture.py (fit, planes, camera moves) -> timeline.py (frames per kind of request) -> encode.py (MP4)
job.py (what decides the bytes, its key, the worker) -> cache.py (files on disk, LRU) -> renderer.py
(the render threads and the queue's finish gate).
"""
