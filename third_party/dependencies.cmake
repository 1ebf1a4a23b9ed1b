# Third-party libraries for examples/ and bench/, all from Debian packages (see
# debian-packages.txt). The core (ember::ember) needs only Eigen and OpenMP and never these.
#
# Each library found becomes an imported target and sets EMBER_HAVE_<NAME>; a consumer checks
# `if(TARGET ember::stb)` and skips (with a message) what it cannot build, so a machine without
# an optional package still builds and tests the rest.
#   ember::stb     stb_image / stb_image_write / stb_image_resize. Debian's libstb.a already holds the
#                  implementations: include <stb_image.h> and do NOT define STB_IMAGE_IMPLEMENTATION.
#   ember::zlib    gzip-compressed IDX files (MNIST).
#   ember::cli11   command-line subcommands of the tutorial programs.
#   ember::json    nlohmann_json: safetensors headers, bench JSON output, tokenizer configs.
#   ember::opencc  Traditional/Simplified Chinese conversion (text/).
#   ember::cairo   PNG plots (training curves).
include_guard(GLOBAL)

find_package(PkgConfig QUIET)

function(_ember_alias name target)
  if(TARGET ${target} AND NOT TARGET ember::${name})
    add_library(ember::${name} INTERFACE IMPORTED)
    set_target_properties(ember::${name} PROPERTIES INTERFACE_LINK_LIBRARIES ${target})
  endif()
  string(TOUPPER ${name} upper)
  if(TARGET ember::${name})
    set(EMBER_HAVE_${upper} ON PARENT_SCOPE)
  else()
    set(EMBER_HAVE_${upper} OFF PARENT_SCOPE)
  endif()
endfunction()

# stb: headers in <prefix>/include/stb, implementations in libstb.a (Debian's libstb-dev).
find_path(EMBER_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
find_library(EMBER_STB_LIBRARY stb)
if(EMBER_STB_INCLUDE_DIR AND EMBER_STB_LIBRARY AND NOT TARGET ember::stb)
  add_library(ember::stb INTERFACE IMPORTED)
  set_target_properties(ember::stb PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES ${EMBER_STB_INCLUDE_DIR}
    INTERFACE_LINK_LIBRARIES ${EMBER_STB_LIBRARY})
endif()
_ember_alias(stb ember::stb)

find_package(ZLIB QUIET)
_ember_alias(zlib ZLIB::ZLIB)

find_package(CLI11 QUIET CONFIG)
_ember_alias(cli11 CLI11::CLI11)

find_package(nlohmann_json 3 QUIET CONFIG)
_ember_alias(json nlohmann_json::nlohmann_json)

if(PKG_CONFIG_FOUND)
  pkg_check_modules(EMBER_PC_OPENCC QUIET IMPORTED_TARGET opencc)
  _ember_alias(opencc PkgConfig::EMBER_PC_OPENCC)
  pkg_check_modules(EMBER_PC_CAIRO QUIET IMPORTED_TARGET cairo)
  _ember_alias(cairo PkgConfig::EMBER_PC_CAIRO)
else()
  set(EMBER_HAVE_OPENCC OFF)
  set(EMBER_HAVE_CAIRO OFF)
endif()

set(_ember_missing "")
foreach(dep STB ZLIB CLI11 JSON OPENCC CAIRO)
  if(NOT EMBER_HAVE_${dep})
    list(APPEND _ember_missing ${dep})
  endif()
endforeach()
if(_ember_missing)
  message(STATUS "Ember: optional libraries not found: ${_ember_missing} "
                 "(run scripts/install_deps.sh; programs that need them are skipped)")
else()
  message(STATUS "Ember: optional libraries found: stb zlib CLI11 nlohmann_json OpenCC cairo")
endif()
