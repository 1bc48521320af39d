"""Exposes ../shared/models (beside the checkout) as @shared_models, so tests
and the server declare the real checkpoints as data instead of guessing paths.
"""

def _shared_models_impl(rctx):
    root = rctx.path(Label("//:WORKSPACE")).dirname
    models = root.dirname.get_child("shared").get_child("models")
    rctx.file("WORKSPACE", 'workspace(name = "shared_models")\n')
    if models.exists:
        for f in models.readdir():
            rctx.symlink(f, f.basename)
        rctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])
filegroup(name = "models", srcs = glob(["*.bin"]))
exports_files(glob(["*"]))
""")
    else:
        # Still builds; tests that need the models fail saying where to put
        # them.
        rctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])
filegroup(name = "models", srcs = [])
""")

shared_models = repository_rule(
    implementation = _shared_models_impl,
    local = True,
)
