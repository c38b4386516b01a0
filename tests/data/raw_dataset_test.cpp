#include "tlk/data/raw_dataset.h"

#include <fstream>
#include <functional>

#include "test_util.h"
#include "tlk/data/label_map.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return tlk::testing::fresh_temp_dir("raw_dataset_" + name); }

// A tiny u8 volume [2, 3, 4] written as NIfTI.
void write_volume(const fs::path& path, std::uint8_t value = 1) {
  io::NiftiImage im;
  im.data = Tensor::full({2, 3, 4}, value, TensorOptions{DType::u8});
  im.dims = {4, 3, 2};
  im.spacing = {1.0, 1.0, 2.5};
  im.stored_type = io::NiftiType::u8;
  fs::create_directories(path.parent_path());
  io::write_nifti(path, im);
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// The message of the tlk::Error `fn` throws ("" when it throws none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

data::DatasetJson two_channel_info(std::int64_t num_training) {
  data::DatasetJson d;
  d.name = "Toy";
  d.channel_names = {"CT", "PET"};
  d.labels = {{"tumor", 2}, {"background", 0}, {"kidney", 1}};  // unsorted on purpose
  d.num_training = num_training;
  return d;
}

// A v2 dataset: case_b and case_a with two channels each (case_a labeled), test case case_c.
fs::path make_v2_dataset(const std::string& name) {
  const fs::path dir = fresh_dir(name);
  data::write_dataset_json(dir, two_channel_info(2));
  for (const char* id : {"case_b", "case_a"})
    for (int c = 0; c < 2; ++c) write_volume(dir / "imagesTr" / data::image_file_name(id, c));
  write_volume(dir / "labelsTr" / "case_a.nii.gz");
  for (int c = 0; c < 2; ++c) write_volume(dir / "imagesTs" / data::image_file_name("case_c", c));
  write_text(dir / "imagesTr" / "README.txt", "not an image");
  write_text(dir / "imagesTr" / "._case_a_0000.nii.gz", "macOS resource fork");
  return dir;
}

}  // namespace

TEST_CASE("label map: parsing, text round trip and errors") {
  data::LabelMap m = data::parse_label_map("2:1, 3:1 ,*:0");
  CHECK(m.pairs.size() == 2);
  CHECK(m.map(2) == 1);
  CHECK(m.map(3) == 1);
  CHECK(m.map(7) == 0);
  CHECK(m.map(0) == 0);
  CHECK(data::to_string(m) == "2:1,3:1,*:0");
  CHECK(data::to_string(data::parse_label_map(data::to_string(m))) == "2:1,3:1,*:0");
  CHECK_FALSE(m.is_identity());

  data::LabelMap keep = data::parse_label_map("2:1");
  CHECK(keep.map(5) == 5);  // Note [Unmapped labels]: unlisted labels stay
  CHECK(keep.map(2) == 1);
  CHECK(data::parse_label_map("").is_identity());
  CHECK(data::parse_label_map("4:4").is_identity());
  CHECK(data::parse_label_map("*:0").is_identity() == false);  // every foreground label becomes 0

  CHECK(contains(error_of([] { data::parse_label_map("2-1"); }), "not 'from:to'"));
  CHECK(contains(error_of([] { data::parse_label_map("2:1:3"); }), "not 'from:to'"));
  CHECK(contains(error_of([] { data::parse_label_map("2:256"); }), "outside 0..255"));
  CHECK(contains(error_of([] { data::parse_label_map("1000:1"); }), "outside 0..255"));
  CHECK(contains(error_of([] { data::parse_label_map("a:1"); }), "'a' is not a label"));
  CHECK(contains(error_of([] { data::parse_label_map("-1:0"); }), "'-1' is not a label"));
  CHECK(contains(error_of([] { data::parse_label_map("2:1,2:0"); }), "mapped twice"));
  CHECK(contains(error_of([] { data::parse_label_map("2:1,,3:1"); }), "item ''"));
  CHECK(contains(error_of([] { data::parse_label_map("*:0,*:1"); }), "'*' is given twice"));
}

TEST_CASE("label map: apply to u8, i32, f32 volumes; out-of-range values are errors naming the input") {
  const data::LabelMap m = data::parse_label_map("2:1,3:1,*:0");
  const std::vector<double> values = {0, 1, 2, 3, 4, 15, 3, 2};
  const std::vector<double> expected = {0, 0, 1, 1, 0, 0, 1, 1};
  for (DType dtype : {DType::u8, DType::i32, DType::i64, DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dtype));
    Tensor out = data::apply(m, Tensor::from_doubles(values, {2, 2, 2}, dtype));
    CHECK(out.dtype() == DType::u8);
    CHECK(out.shape() == Shape{2, 2, 2});
    CHECK(out.to_doubles() == expected);
  }
  // Unmapped labels stay without '*'.
  CHECK(data::apply(data::parse_label_map("2:1"), Tensor::from_doubles(values, {8}, DType::i32)).to_doubles() ==
        std::vector<double>{0, 1, 1, 3, 4, 15, 3, 1});
  // The identity on contiguous u8 is the volume itself (no copy).
  Tensor u8 = Tensor::from_doubles(values, {8}, DType::u8);
  CHECK(data::apply(data::LabelMap{}, u8).is_same(u8));

  std::vector<double> big = values;
  big[5] = 300;
  const std::string e = error_of([&] { data::apply(m, Tensor::from_doubles(big, {8}, DType::i32), "seg.nii.gz"); });
  CHECK(contains(e, "seg.nii.gz"));
  CHECK(contains(e, "300"));
  CHECK(contains(e, "voxel 5"));
  big[5] = -1;
  CHECK(contains(error_of([&] { data::apply(m, Tensor::from_doubles(big, {8}, DType::i32)); }), "-1"));
  big[5] = 1.5;
  CHECK(contains(error_of([&] { data::apply(m, Tensor::from_doubles(big, {8}, DType::f32)); }), "1.5"));
}

TEST_CASE("raw dataset: nnUNet v2 layout lists cases, channels, labels and test cases") {
  const fs::path dir = make_v2_dataset("v2");
  const data::RawDataset ds = data::open_raw_dataset(dir);
  CHECK(ds.info.format_version == 2);
  CHECK(ds.info.name == "Toy");
  CHECK(ds.info.channel_names == std::vector<std::string>{"CT", "PET"});
  REQUIRE(ds.info.labels.size() == 3);
  CHECK(ds.info.labels[0] == data::DatasetLabel{"background", 0});
  CHECK(ds.info.labels[2] == data::DatasetLabel{"tumor", 2});
  CHECK(ds.info.label_value("kidney") == 1);
  CHECK(ds.info.label_name(2) == "tumor");
  CHECK(ds.info.label_name(9) == "9");
  CHECK(contains(error_of([&] { ds.info.label_value("liver"); }), "kidney (1)"));
  CHECK(ds.info.num_training == 2);
  CHECK(ds.info.file_ending == ".nii.gz");

  REQUIRE(ds.training.size() == 2);
  CHECK(ds.training[0].id == "case_a");
  CHECK(ds.training[1].id == "case_b");
  REQUIRE(ds.training[0].images.size() == 2);
  CHECK(ds.training[0].images[0] == dir / "imagesTr" / "case_a_0000.nii.gz");
  CHECK(ds.training[0].images[1] == dir / "imagesTr" / "case_a_0001.nii.gz");
  REQUIRE(ds.training[0].label.has_value());
  CHECK(*ds.training[0].label == dir / "labelsTr" / "case_a.nii.gz");
  CHECK_FALSE(ds.training[1].label.has_value());  // unlabeled cases are kept (domain adaptation targets)
  CHECK(&ds.training_case("case_b") == &ds.training[1]);
  CHECK(contains(error_of([&] { ds.training_case("case_z"); }), "case_z"));
  REQUIRE(ds.test.size() == 1);
  CHECK(ds.test[0].id == "case_c");
  CHECK(ds.test[0].images.size() == 2);

  // write_dataset_json wrote the v2 form, labels sorted by value; read_dataset_json reads it back.
  const data::DatasetJson back = data::read_dataset_json(dir / "dataset.json");
  CHECK(back.labels == ds.info.labels);
  std::ifstream in(dir / "dataset.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(contains(text, "\"channel_names\""));
  CHECK(contains(text, "\"background\": 0"));
  CHECK(text.find("background") < text.find("kidney"));
  CHECK(text.find("kidney") < text.find("tumor"));
  CHECK_FALSE(fs::exists(dir / "dataset.json.tmp"));
}

TEST_CASE("raw dataset: nnUNet v1 / Decathlon dataset.json and the explicit v2 'dataset' list") {
  const fs::path dir = fresh_dir("v1");
  write_text(dir / "dataset.json", R"({"name": "Task03_Liver", "modality": {"0": "CT"},
    "labels": {"0": "background", "1": "liver", "2": "cancer"}, "numTraining": 1, "numTest": 0,
    "training": [{"image": "./imagesTr/liver_0.nii.gz", "label": "./labelsTr/liver_0.nii.gz"}], "test": []})");
  write_volume(dir / "imagesTr" / "liver_0_0000.nii.gz");
  write_volume(dir / "labelsTr" / "liver_0.nii.gz");
  const data::RawDataset ds = data::open_raw_dataset(dir);
  CHECK(ds.info.format_version == 1);
  CHECK(ds.info.channel_names == std::vector<std::string>{"CT"});
  CHECK(ds.info.labels == std::vector<data::DatasetLabel>{{"background", 0}, {"liver", 1}, {"cancer", 2}});
  CHECK(ds.info.file_ending == ".nii.gz");
  REQUIRE(ds.training.size() == 1);
  CHECK(ds.training[0].id == "liver_0");
  CHECK(ds.training[0].label.has_value());

  const fs::path ex = fresh_dir("explicit");
  write_text(ex / "dataset.json", R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "kidney": 1},
    "numTraining": 1, "file_ending": ".nii",
    "dataset": {"k1": {"images": ["somewhere/k1_ct.nii"], "label": "masks/k1.nii"}}})");
  write_volume(ex / "somewhere" / "k1_ct.nii");
  write_volume(ex / "masks" / "k1.nii");
  const data::RawDataset es = data::open_raw_dataset(ex);
  REQUIRE(es.training.size() == 1);
  CHECK(es.training[0].images[0] == ex / "somewhere" / "k1_ct.nii");
  CHECK(*es.training[0].label == ex / "masks" / "k1.nii");
  CHECK(es.info.file_ending == ".nii");
}

TEST_CASE("raw dataset: clear errors for broken dataset.json files and layouts") {
  const fs::path dir = fresh_dir("errors");
  const auto open_error = [&] { return error_of([&] { data::open_raw_dataset(dir); }); };
  std::string e = open_error();
  CHECK(contains(e, (dir / "dataset.json").string()));
  CHECK(contains(e, "no such file"));
  CHECK(contains(error_of([] { data::open_raw_dataset("/nonexistent/tlk/dataset"); }), "no such dataset folder"));

  const auto json_error = [&](const std::string& text) {
    write_text(dir / "dataset.json", text);
    return open_error();
  };
  e = json_error(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0,}})");
  CHECK(contains(e, "dataset.json: malformed JSON"));
  CHECK(contains(e, "parse error"));
  CHECK(contains(json_error(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "kidney": [1, 2]}})"),
                 "region labels are not supported"));
  CHECK(contains(json_error(R"({"channel_names": {"0": "CT"}, "labels": {"kidney": 1}})"), "no background"));
  CHECK(contains(json_error(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "k": 1, "t": 1}})"),
                 "share the value 1"));
  CHECK(contains(json_error(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "k": 300}})"), "0..255"));
  CHECK(contains(json_error(R"({"labels": {"background": 0}})"), "neither 'channel_names'"));
  CHECK(contains(json_error(R"({"channel_names": {"1": "CT"}, "labels": {"background": 0}})"), "key '1'"));
  CHECK(contains(json_error(R"({"channel_names": {"0": "CT"}})"), "no 'labels'"));
  CHECK(contains(json_error(R"([1, 2])"), "JSON object"));
  CHECK(contains(json_error(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": "x"})"),
                 "'numTraining'"));
  CHECK(contains(json_error(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0}})"), "no imagesTr"));

  // Layout errors (two channels, numTraining 1).
  data::write_dataset_json(dir, two_channel_info(1));
  write_volume(dir / "imagesTr" / "case_a_0000.nii.gz");
  e = open_error();
  CHECK(contains(e, "case 'case_a' has no file for channel 1 ('PET')"));
  CHECK(contains(e, "case_a_0001.nii.gz"));
  write_volume(dir / "imagesTr" / "case_a_0001.nii.gz");
  CHECK(open_error().empty());

  write_volume(dir / "labelsTr" / "case_q.nii.gz");
  e = open_error();
  CHECK(contains(e, "label file without images"));
  CHECK(contains(e, "case_q.nii.gz"));
  fs::remove(dir / "labelsTr" / "case_q.nii.gz");

  write_volume(dir / "imagesTr" / "case_a_0002.nii.gz");
  CHECK(contains(open_error(), "channel 2 but dataset.json names 2 channel(s)"));
  fs::remove(dir / "imagesTr" / "case_a_0002.nii.gz");

  write_volume(dir / "imagesTr" / "case_b.nii.gz");
  e = open_error();
  CHECK(contains(e, "case_b.nii.gz: image file name is not <case>_<XXXX>.nii.gz"));
  fs::remove(dir / "imagesTr" / "case_b.nii.gz");

  for (int c = 0; c < 2; ++c) write_volume(dir / "imagesTr" / data::image_file_name("case_b", c));
  CHECK(contains(open_error(), "numTraining is 1 but"));
}
