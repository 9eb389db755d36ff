# siobridge_test(NAME name SOURCES ... LIBS ... LABELS ... [SKIPPABLE tag ...])
# One Catch2 executable registered with CTest. Unit tests run under the sanitizers
# when SIOBRIDGE_SANITIZE is on; tests labelled "mongodb" need MONGODB_URI.
# Without BUILD_TESTING it defines nothing (package and image builds).
#
# SKIPPABLE names the tags (without brackets) of cases that may find they
# cannot run on the test MongoDB at hand; such a case says so with
# WARN("case skipped: <why>") and returns. Catch2 2 has no SKIP, and a case
# that returns passes: each of them is its own CTest test, name[tag], which
# CTest reports as skipped when that line appears, and the executable's own
# test leaves them out.
function(siobridge_test)
  if(NOT BUILD_TESTING)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;SKIPPABLE" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} Catch2::Catch2WithMain)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  # One Catch2 test spec, "~[a]~[b]": specs run together are ANDed.
  set(others "")
  foreach(tag IN LISTS T_SKIPPABLE)
    string(APPEND others "~[${tag}]")
    # --warn NoTests: a tag no case has any more fails instead of passing empty.
    add_test(NAME ${T_NAME}[${tag}] COMMAND ${T_NAME} "[${tag}]" --warn NoTests)
    set_tests_properties(${T_NAME}[${tag}] PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
      SKIP_REGULAR_EXPRESSION "case skipped: ")
  endforeach()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${others})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
