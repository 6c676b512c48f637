// Fuzz builds only (tests/fuzz/CMakeLists.txt): stb_image's implementation from Debian's header,
// compiled with the sanitizers and coverage. Normal builds link Debian's libstb instead.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
