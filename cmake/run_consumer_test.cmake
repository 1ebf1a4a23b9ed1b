# CTest driver for consumer_find_package (run with cmake -P):
#   1. installs the "ember" component of the build tree into a scratch prefix,
#   2. configures tests/consumer (a separate project that calls find_package(ember)) against it,
#   3. builds it and runs the app, which exits 0 only when its gradients are right.
# Inputs: EMBER_SOURCE_DIR, EMBER_BINARY_DIR, WORK_DIR, CXX_COMPILER, BUILD_TYPE.
foreach(var EMBER_SOURCE_DIR EMBER_BINARY_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer_test.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer_find_package: ${name} failed (exit ${rc}):\n${out}")
  endif()
  message(STATUS "consumer_find_package: ${name} ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

step("install into ${prefix}"
  ${CMAKE_COMMAND} --install ${EMBER_BINARY_DIR} --prefix ${prefix} --component ember --config ${BUILD_TYPE})

set(configure_args -S ${EMBER_SOURCE_DIR}/tests/consumer -B ${build}
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_PREFIX_PATH=${prefix})
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
step("configure tests/consumer" ${CMAKE_COMMAND} ${configure_args})
# The config must come from the scratch prefix, never from the source or build tree.
file(STRINGS ${build}/CMakeCache.txt ember_dir REGEX "^ember_DIR:")
if(NOT ember_dir MATCHES "^ember_DIR:PATH=${prefix}/")
  message(FATAL_ERROR "consumer_find_package: found ember outside the install prefix: ${ember_dir}")
endif()

step("build tests/consumer" ${CMAKE_COMMAND} --build ${build} --config ${BUILD_TYPE})

find_program(app NAMES ember_consumer PATHS ${build} ${build}/${BUILD_TYPE} NO_DEFAULT_PATH REQUIRED)
step("run ember_consumer" ${app})
message("${step_output}")
