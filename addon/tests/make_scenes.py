"""Fixture scenes for the add-on's end-to-end test, made with real Blender.

    blender -b --factory-startup --python addon/tests/make_scenes.py -- DIR

Writes under DIR (made by Blender 3.4, the files open in every later Blender):

- `project/assets/props.blend`: the object "Prop", a plane of pure red light.
- `outside/wall.png`: a 16x16 texture of pure green, outside the project folder.
- `project/shots/shot.blend`: links "Prop" from `//../assets/props.blend` (a path that climbs
  out of the shot's folder) and shows a second plane whose light is `wall.png`, named by its
  absolute path. Its camera sees red on the left half and green on the right half: black
  instead of red means the library was not found, magenta instead of green the texture.
- `project/shots/missing.blend`: the same shot whose texture is `//textures/missing_wood.png`,
  a file that does not exist.
- `outside/lib/blue_props.blend`: the object "BlueProp", a plane whose light is the texture
  `//tex/blue.png` (pure blue), relative to the library, outside the project.
- `project/shots/external.blend`: links "BlueProp" by the library's absolute path; its camera
  sees blue where it covers the frame (the left half), black elsewhere.

64x48 pixels, Cycles with 4 samples: a frame renders in about a second.
"""

import os
import sys

import bpy

out = os.path.abspath(sys.argv[sys.argv.index("--") + 1])
assets = os.path.join(out, "project", "assets")
shots = os.path.join(out, "project", "shots")
outside = os.path.join(out, "outside")
for folder in (assets, shots, outside):
    os.makedirs(folder, exist_ok=True)


def empty_file():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    # No `.blend1` backups beside the files.
    bpy.context.preferences.filepaths.save_version = 0


def emissive_plane(name, location, scale_x, color=None, image=None):
    """A plane of light: `color`, or `image` through a texture node."""
    bpy.ops.mesh.primitive_plane_add(size=1.0, location=location)
    plane = bpy.context.active_object
    plane.name = name
    plane.scale = (scale_x, 1.0, 1.0)
    material = bpy.data.materials.new(name + " light")
    material.use_nodes = True
    nodes = material.node_tree.nodes
    nodes.clear()
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Strength"].default_value = 1.0
    if image is None:
        emission.inputs["Color"].default_value = color
    else:
        texture = nodes.new("ShaderNodeTexImage")
        texture.image = image
        texture.interpolation = "Closest"
        material.node_tree.links.new(texture.outputs["Color"], emission.inputs["Color"])
    output = nodes.new("ShaderNodeOutputMaterial")
    material.node_tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    plane.data.materials.append(material)
    return plane


# The texture, outside the project: pure green.
texture_path = os.path.join(outside, "wall.png")
empty_file()
green = bpy.data.images.new("wall", 16, 16, alpha=False)
green.pixels[:] = [0.0, 1.0, 0.0, 1.0] * (16 * 16)
green.filepath_raw = texture_path
green.file_format = "PNG"
green.save()

# The outside library, its texture beside it.
blue_path = os.path.join(outside, "lib", "tex", "blue.png")
os.makedirs(os.path.dirname(blue_path), exist_ok=True)
empty_file()
blue = bpy.data.images.new("blue", 16, 16, alpha=False)
blue.pixels[:] = [0.0, 0.0, 1.0, 1.0] * (16 * 16)
blue.filepath_raw = blue_path
blue.file_format = "PNG"
blue.save()
empty_file()
outside_library_path = os.path.join(outside, "lib", "blue_props.blend")
bpy.ops.wm.save_as_mainfile(filepath=outside_library_path)
blue_image = bpy.data.images.load(blue_path)
blue_image.filepath = "//tex/blue.png"
emissive_plane("BlueProp", (-0.75, 0.0, 0.0), 1.5, image=blue_image)
bpy.ops.wm.save_as_mainfile(filepath=outside_library_path, compress=True, relative_remap=False)

# The library: a red plane covering the left half of the frame.
empty_file()
emissive_plane("Prop", (-0.75, 0.0, 0.0), 1.5, color=(1.0, 0.0, 0.0, 1.0))
library_path = os.path.join(assets, "props.blend")
bpy.ops.wm.save_as_mainfile(filepath=library_path, compress=True)


def make_shot(path, texture, library=library_path, prop="Prop", relative=True):
    """The shot: the linked prop, a textured plane on the right, an orthographic camera."""
    empty_file()
    bpy.ops.wm.save_as_mainfile(filepath=path)
    scene = bpy.context.scene
    with bpy.data.libraries.load(library, link=True, relative=relative) as (_, data_to):
        data_to.objects = [prop]
    for linked in data_to.objects:
        scene.collection.objects.link(linked)
    if texture is not None and os.path.exists(bpy.path.abspath(texture)):
        image = bpy.data.images.load(texture, check_existing=False)
        image.name = "wall"
    elif texture is not None:
        image = bpy.data.images.new("wall", 16, 16)
        image.source = "FILE"
        image.filepath = texture
    if texture is not None:
        emissive_plane("Wall", (0.75, 0.0, 0.0), 1.5, image=image)
    camera_data = bpy.data.cameras.new("Camera")
    camera_data.type = "ORTHO"
    camera_data.ortho_scale = 2.0
    camera = bpy.data.objects.new("Camera", camera_data)
    camera.location = (0.0, 0.0, 5.0)
    scene.collection.objects.link(camera)
    scene.camera = camera
    world = bpy.data.worlds.new("Black")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 4
    scene.cycles.use_denoising = False
    scene.render.resolution_x = 64
    scene.render.resolution_y = 48
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = "//renders/frame_"
    scene.frame_start = 1
    scene.frame_end = 2
    scene.view_settings.view_transform = "Standard"
    # relative_remap=False: the library stays `//../assets/props.blend` and the texture stays
    # absolute, as the scene means them to be.
    bpy.ops.wm.save_as_mainfile(filepath=path, compress=True, relative_remap=False)


shot_path = os.path.join(shots, "shot.blend")
make_shot(shot_path, texture_path)
print("wrote", shot_path, "linking", bpy.data.libraries[0].filepath, "with", bpy.data.images["wall"].filepath)

missing_path = os.path.join(shots, "missing.blend")
make_shot(missing_path, "//textures/missing_wood.png")
print("wrote", missing_path, "with", bpy.data.images["wall"].filepath)

external_path = os.path.join(shots, "external.blend")
make_shot(external_path, None, library=outside_library_path, prop="BlueProp", relative=False)
print("wrote", external_path, "linking", bpy.data.libraries[0].filepath)
