# siobridge_test(NAME name SOURCES ... LIBS ... LABELS ...)
# One Catch2 executable registered with CTest. Unit tests run under the sanitizers
# when SIOBRIDGE_SANITIZE is on; tests labelled "mongodb" need MONGODB_URI.
# Without BUILD_TESTING it defines nothing (package and image builds).
function(siobridge_test)
  if(NOT BUILD_TESTING)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} Catch2::Catch2WithMain)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
