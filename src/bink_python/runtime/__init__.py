"""CPython runtimes compiled in a build root, cleaned, checked and packaged.

- ``spec.py``       -- what a runtime is: :class:`RuntimeSpec`, the profiles, the result
- ``plan.py``       -- the pure planner: every configure argument, flag and make variable,
  and the cache key (``runtime_key``); no I/O
- ``recipe.py``     -- the named steps of one build, each over the job, and ``record.json``
- ``build.py``      -- ``build_runtime``: from the cache, or compiled and stored
- ``buildroot.py``  -- the build roots: a chroot of the OS release with compilers
- ``contents.py``   -- what a built runtime must contain, and what it links
- ``options.py``    -- what each CPython minor's configure, Makefile and stdlib have, as
  documented, and the checker that holds a plan to it
- ``cpythonlog.py`` -- CPython's build log read as it is written, for progress
- ``elf.py``        -- the one ELF reader
"""
