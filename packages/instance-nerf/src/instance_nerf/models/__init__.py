"""The nerfstudio model: nerfacto plus the instance field, its losses, the palette and the offline helpers it needs."""
