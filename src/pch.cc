// The translation unit that builds kilnd_pch, the kilnd libraries' precompiled header
// (src/CMakeLists.txt); it has no code of its own.
