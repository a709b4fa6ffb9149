"""Scene data: the ``instance-nerf-data`` dataparser, mask dataset/datamanager, procedural rooms, readers and atomic writers."""
