# Build helpers shared by every part.
include(GoogleTest)

# Adds every direct child folder of the current source dir that has a CMakeLists.txt, so a
# new subsystem folder joins the build without editing its parent.
macro(kiln_add_subdirs)
  file(GLOB _kiln_children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _kiln_children)
  foreach(_child IN LISTS _kiln_children)
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_child} AND
       EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_child}/CMakeLists.txt)
      add_subdirectory(${_child})
    endif()
  endforeach()
endmacro()

# kiln_add_gtest(NAME LABEL unit|kvm|e2e SOURCES a.cc ... LIBS lib ... [TIMEOUT s])
# One GoogleTest binary; each TEST becomes a CTest test carrying the label.
function(kiln_add_gtest name)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_LABEL)
    message(FATAL_ERROR "kiln_add_gtest(${name}): LABEL is required (unit, kvm or e2e)")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  # Tests find the trees at run time (tests/support/test_paths.h): no path is compiled in, so
  # ccache reuses test objects across clones.
  target_link_libraries(${name} PRIVATE ${T_LIBS} kiln_test_support GTest::gmock GTest::gtest
                                        GTest::gtest_main)
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT})
endfunction()
