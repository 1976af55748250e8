"""Build the Cython extensions of sklearn_lsh, with OpenMP when the compiler has it.

OpenMP is probed with a tiny program (compiled, linked and run); without it the
extensions are built serial. Set ``SKLEARN_LSH_NO_OPENMP=1`` to force a serial
build, or ``SKLEARN_LSH_FAIL_NO_OPENMP=1`` to make a missing OpenMP an error.
"""

import glob
import os
import subprocess
import sys
import tempfile
import textwrap

from setuptools import Extension, setup

PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
    #pragma omp parallel
        printf("nthreads=%d\\n", omp_get_num_threads());
        return 0;
    }
    """
)


def _run_probe(flags):
    """Compile, link and run PROBE with the compiler that builds the extensions.

    setuptools' compiler object (MSVC on Windows, ``CC`` or Python's compiler
    elsewhere), as build_ext uses it: no compiler command line or executable
    name is spelled out here.
    """
    from setuptools.command.build_ext import customize_compiler, new_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(PROBE)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=flags[0])
        compiler.link_executable(
            objects, "probe", output_dir=tmp, extra_postargs=flags[1]
        )
        exe = os.path.join(tmp, compiler.executable_filename("probe"))
        return subprocess.run(
            [exe], check=True, capture_output=True, text=True
        ).stdout.splitlines()


def openmp_flags():
    """Return (compile_flags, link_flags) for OpenMP, or None when unavailable."""
    if os.environ.get("SKLEARN_LSH_NO_OPENMP"):
        return None
    if sys.platform == "win32":
        flags = (["/openmp"], [])
    elif sys.platform == "darwin":
        flags = (["-Xpreprocessor", "-fopenmp"], ["-lomp"])
    else:
        flags = (["-fopenmp"], ["-fopenmp"])
    try:
        out = _run_probe(flags)
        nthreads = int(out[0].split("=")[1])
        if len(out) != nthreads:
            raise RuntimeError(f"probe printed {len(out)} lines for {nthreads} threads")
    except Exception as exc:  # any failure means: build without OpenMP
        if os.environ.get("SKLEARN_LSH_FAIL_NO_OPENMP"):
            raise RuntimeError("OpenMP was required but the probe failed") from exc
        print("sklearn_lsh: OpenMP unavailable (%s); building serial code" % exc)
        return None
    return flags


def extensions():
    from Cython.Build import cythonize

    omp = openmp_flags()
    # No errno from sqrt: lets the optimizer loops vectorise.
    cflags = ["-O3", "-fno-math-errno"] if sys.platform != "win32" else ["/O2"]
    ldflags = []
    if omp is not None:
        cflags += omp[0]
        ldflags += omp[1]
    sanitizers = os.environ.get("SKLEARN_LSH_SANITIZE")
    if sanitizers:
        flags = [f"-fsanitize={sanitizers}", "-fno-sanitize-recover=all"]
        cflags += [*flags, "-fno-omit-frame-pointer", "-g", "-O1"]
        ldflags += flags
    # The C sources carry a define saying whether OpenMP was compiled in.
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    exts = [
        Extension(
            "sklearn_lsh." + os.path.splitext(os.path.basename(path))[0],
            [path],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
            define_macros=macros,
            # Rebuilt when a C header they may include changes.
            depends=sorted(glob.glob(os.path.join("sklearn_lsh", "*.h"))),
        )
        for path in sorted(glob.glob(os.path.join("sklearn_lsh", "*.pyx")))
    ]
    # Developers may rebuild a subset: SKLEARN_LSH_BUILD_ONLY=_hashing,_tables
    only = os.environ.get("SKLEARN_LSH_BUILD_ONLY")
    if only:
        keep = {"sklearn_lsh." + name.strip() for name in only.split(",")}
        exts = [ext for ext in exts if ext.name in keep]
    debug = bool(os.environ.get("SKLEARN_LSH_DEBUG_CYTHON"))
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": False,
            "initializedcheck": debug,
            "nonecheck": False,
            "cdivision": True,
            "profile": False,
        },
    )


setup(ext_modules=extensions())
