# Compiler flags shared by every target: strict warnings and the optional
# sanitizer and fuzzing instrumentation.

option(SIOBRIDGE_WERROR "Treat warnings as errors" ON)
option(SIOBRIDGE_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(SIOBRIDGE_FUZZ "Build the libFuzzer targets (clang only)" OFF)

# Rebuilds in several build directories (test, release, bench) share one cache.
find_program(SIOBRIDGE_CCACHE ccache)
if(SIOBRIDGE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${SIOBRIDGE_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${SIOBRIDGE_CCACHE})
endif()

add_compile_options(-Wall -Wextra)
# libbson declares bson_t with an alignment attribute; GCC warns that the
# attribute is dropped whenever bson_t appears in a template argument
# (std::vector<const bson_t*>), which is harmless for pointers.
add_compile_options(-Wno-ignored-attributes)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 false positives in optimized builds: -Wrestrict on std::string
  # concatenation (GCC bug 105651) and -Wmaybe-uninitialized on std::optional
  # members (GCC bug 80635). Clang builds keep both checks.
  add_compile_options(-Wno-restrict -Wno-maybe-uninitialized)
endif()
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Locking checked by the compiler: the GUARDED_BY / REQUIRES / EXCLUDES
  # annotations of daemon/common/thread_annotations.h.
  add_compile_options(-Wthread-safety)
endif()
if(SIOBRIDGE_WERROR)
  add_compile_options(-Werror)
endif()

if(SIOBRIDGE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(SIOBRIDGE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SIOBRIDGE_FUZZ needs clang (e.g. CXX=clang++-14)")
  endif()
  # Coverage feedback for the code under test; the fuzz executables add the driver.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
