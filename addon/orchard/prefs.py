"""The add-on's preferences: which farm, and the key to it.

Stored the way Blender stores every add-on's preferences (in `userpref.blend`, when the
preferences are saved). The key is a password field: the interface shows dots, and the add-on
never prints or logs it.
"""

import bpy
from bpy.props import IntProperty, StringProperty

# The add-on's module: `orchard` when installed as a legacy add-on,
# `bl_ext.<repository>.orchard` as an extension (Blender 4.2+).
ADDON_ID = __package__


class OrchardPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    server: StringProperty(
        name="Farm URL",
        description="The farm's address, as `orchard up` prints it",
        default="http://127.0.0.1:7800")
    api_key: StringProperty(
        name="API Key",
        description="An RJ- key of the farm (`orchard keys create --workspace NAME`)",
        subtype="PASSWORD",
        default="")
    part_size_mib: IntProperty(
        name="Upload Part Size (MiB)",
        description="Projects bigger than this go up in parts of this size",
        min=5, max=4096, default=64)

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "server")
        layout.prop(self, "api_key")
        layout.prop(self, "part_size_mib")


def get(context=None):
    """The preferences (this add-on's entry of `context.preferences.addons`)."""
    context = context or bpy.context
    return context.preferences.addons[ADDON_ID].preferences


def register():
    bpy.utils.register_class(OrchardPreferences)


def unregister():
    bpy.utils.unregister_class(OrchardPreferences)
