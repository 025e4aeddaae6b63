"""Orchard: render the open scene on an Orchard farm, from Blender.

A panel in the Render properties packs the scene with everything it uses, uploads it, renders
it on the farm and shows the job; `bpy.ops.orchard.submit()` does the same from a script, also
in background mode, and `bpy.ops.orchard.download()` fetches the frames.

Modules: `client` (the farm's HTTP API, no `bpy`), `pack` (the scene's files → a `.zip`
project), `jobs` (what the operators do on the farm, no `bpy`), `background` (threads, timers,
status bar), `ops` (operators), `ui` (the panel), `props` (`scene.orchard`), `prefs` (farm URL
and API key).

One code base for Blender 3.4 to 5.0: `bl_info` for legacy add-ons, `blender_manifest.toml`
for extensions (4.2+).
"""

bl_info = {
    "name": "Orchard Render Farm",
    "author": "Orchard",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Render > Orchard Render Farm",
    "description": "Render the open scene on an Orchard farm",
    "category": "Render",
}

if "bpy" in locals():
    # Reload Scripts (F8): take the edited modules.
    import importlib
    for _module in (client, pack, jobs, props, prefs, background, ops, ui):  # noqa: F821
        importlib.reload(_module)
else:
    from . import background, client, jobs, ops, pack, prefs, props, ui  # noqa: F401

import bpy  # noqa: E402,F401

_MODULES = (prefs, props, ops, ui, background)


def register():
    for module in _MODULES:
        module.register()


def unregister():
    for module in reversed(_MODULES):
        module.unregister()
