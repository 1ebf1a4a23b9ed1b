# Sanitizer builds: -DEMBER_SANITIZE=address,undefined (ASan + UBSan) or -DEMBER_SANITIZE=thread
# (TSan), applied to every target this tree builds (tests, examples, bench), never to an installed
# ember::ember. -fno-sanitize-recover=all makes any report fail the run. scripts/sanitize.sh
# configures, builds and runs the suite this way.
#
# TSan and OpenMP: GCC's libgomp is not built with TSan, so its barriers and thread pool look like
# data races to TSan (false reports in every parallel_for). A TSan build therefore compiles without
# OpenMP (EMBER_OPENMP=OFF): parallel_for takes its serial path, and the threads under test are the
# ones Ember creates itself (DataLoader workers, ...). No suppressions file is needed.
if(NOT EMBER_SANITIZE)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR "EMBER_SANITIZE needs GCC or Clang (compiler: ${CMAKE_CXX_COMPILER_ID})")
endif()
string(REPLACE "," ";" _ember_san_list "${EMBER_SANITIZE}")
foreach(s IN LISTS _ember_san_list)
  if(NOT s MATCHES "^(address|undefined|thread|leak)$")
    message(FATAL_ERROR "EMBER_SANITIZE: unknown sanitizer '${s}' (use address,undefined or thread)")
  endif()
endforeach()
if("thread" IN_LIST _ember_san_list AND ("address" IN_LIST _ember_san_list OR "leak" IN_LIST _ember_san_list))
  message(FATAL_ERROR "EMBER_SANITIZE: thread cannot be combined with address/leak")
endif()
# -g1 (line tables): a report's stack still names every function, file and line, and the compiler
# writes no variable/type debug information for the thousands of template instances of a program
# (ASan+UBSan at -O1: mnist_cnn 580 CPU-s with -g).
set(_ember_san_flags -fsanitize=${EMBER_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer -g1)
add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_ember_san_flags}>")
add_link_options(-fsanitize=${EMBER_SANITIZE})
# The test binary tells sanitized runs apart (smaller sizes where a test is heavy).
add_compile_definitions(EMBER_SANITIZED)
if("thread" IN_LIST _ember_san_list)
  add_compile_definitions(EMBER_TSAN)
endif()
message(STATUS "Ember: sanitizers ${EMBER_SANITIZE} (-fno-sanitize-recover=all)")

if("thread" IN_LIST _ember_san_list)
  # See the header: drop OpenMP from ember::ember in this build tree only (nobody installs a TSan
  # build). Without -fopenmp, _OPENMP is undefined and parallel_for and Eigen run serially.
  get_target_property(_ember_libs ember INTERFACE_LINK_LIBRARIES)
  list(REMOVE_ITEM _ember_libs OpenMP::OpenMP_CXX)
  set_target_properties(ember PROPERTIES INTERFACE_LINK_LIBRARIES "${_ember_libs}")
  message(STATUS "Ember: TSan build without OpenMP (libgomp is not TSan-instrumented)")
endif()
