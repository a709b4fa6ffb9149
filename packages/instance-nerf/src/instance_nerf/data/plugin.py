"""nerfstudio dataparser entry point (kept import-light: nerfstudio loads it while importing itself)."""

from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from instance_nerf.data.dataparser import InstanceDataParserConfig

instance_dataparser = DataParserSpecification(
    config=InstanceDataParserConfig(),
    description="transforms.json + per-view instance-id PNGs (+ instances.json)",
)
