"""placeholder"""
from deepsky.tasks.registry import register_task


@register_task
class StarGalaxy:
    name = "star-galaxy"
    description = "Kim & Brunner (2017): stars vs galaxies in SDSS u,g,r,i,z cutouts"
